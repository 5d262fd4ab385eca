import { CidrSet } from '../../core/cidr-set.js';
import { parseCidr, type Cidr } from '../../core/cidr.js';
import { parseIpValue } from '../../core/ip-value.js';
import { SluiceError } from '../../core/errors.js';
import type { FlowDirection } from '../flow-records.js';
import type { ConntrackEvent } from './event.js';

export interface DirectionOptions {
  /**
   * This host's own addresses and the networks it serves (`10.0.0.0/8`, `2001:db8::1`), in the
   * ACL's strict CIDR syntax (docs/access-control.md). A flow opened from outside towards one of
   * them is ingress; one opened from one of them outwards is egress.
   */
  readonly localNetworks: readonly string[];
  /**
   * Connection marks that decide the direction before the networks are looked at (for a
   * firewall that already marks its traffic, as NetBird's data plane does). `mask` (default
   * 0xffffffff) is applied to the mark before comparing.
   */
  readonly marks?: { readonly ingress?: number; readonly egress?: number; readonly mask?: number };
  /**
   * What to do with a flow whose ends are both local or both remote (loopback traffic, forwarded
   * traffic between two remote networks). Default `skip`: no record.
   */
  readonly unknownDirection?: 'skip' | FlowDirection;
}

/** Decides a flow's direction; undefined means "no record" (unknownDirection: skip). */
export type DirectionOf = (event: ConntrackEvent) => FlowDirection | undefined;

/**
 * Compiles the direction rules once. Throws SluiceError `SLUICE_ERR_CONFIG_INVALID` naming every
 * bad entry (paths relative to the `conntrack` config block).
 *
 * Both tuples are consulted so NAT on this host does not hide a local end: with DNAT (a port
 * forward) the original destination is a public address but the reply comes from the local
 * server (reply src); with SNAT/masquerade the reply goes to this host's public address (reply
 * dst). The opener is local if the original src or the reply dst is; the target is local if the
 * original dst or the reply src is.
 */
export function compileDirection(opts: DirectionOptions): DirectionOf {
  const problems: string[] = [];
  const cidrs: Cidr[] = [];
  opts.localNetworks.forEach((text, i) => {
    const c = parseCidr(String(text));
    if (typeof c === 'string') problems.push(`localNetworks[${i}]: ${c}`);
    else cidrs.push(c);
  });
  const m = opts.marks;
  const mask = m?.mask ?? 0xffffffff;
  for (const key of ['ingress', 'egress', 'mask'] as const) {
    const v = m?.[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) problems.push(`marks.${key}: must be an integer from 0 to 4294967295`);
  }
  if (m?.ingress !== undefined && m.ingress === m.egress) problems.push('marks: ingress and egress must differ');
  if (problems.length > 0) throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `conntrack: ${problems.join('; ')}`);

  const set = new CidrSet(cidrs);
  const isLocal = (address: string) => {
    const ip = parseIpValue(address);
    return ip !== undefined && set.match(ip) !== undefined;
  };
  const fallback = opts.unknownDirection === 'skip' ? undefined : opts.unknownDirection;
  const markIn = m?.ingress === undefined ? undefined : (m.ingress & mask) >>> 0;
  const markOut = m?.egress === undefined ? undefined : (m.egress & mask) >>> 0;

  return (ev) => {
    if (ev.mark !== undefined) {
      const masked = (ev.mark & mask) >>> 0;
      if (masked === markIn) return 'ingress';
      if (masked === markOut) return 'egress';
    }
    const openerLocal = isLocal(ev.orig.src) || isLocal(ev.reply.dst);
    const targetLocal = isLocal(ev.orig.dst) || isLocal(ev.reply.src);
    if (openerLocal && !targetLocal) return 'egress';
    if (targetLocal && !openerLocal) return 'ingress';
    return fallback;
  };
}

import { createHash } from 'node:crypto';
import { canonicalIp, type Family } from '../core/address.js';

/**
 * ICE candidates (RFC 8445 §5.1) and their text form, the SDP `candidate` attribute of RFC 8839
 * §5.1, which is also what werift-ice and browsers exchange in trickle signalling. UDP, one
 * component: that is all a datagram path needs.
 */

export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';

export interface IceCandidate {
  /** 1-32 ice-chars; equal for candidates of one type, base IP and server (RFC 8445 §5.1.1.3). */
  readonly foundation: string;
  readonly component: number;
  readonly transport: 'udp';
  readonly priority: number;
  /** Canonical IP. */
  readonly address: string;
  readonly port: number;
  readonly family: Family;
  readonly type: CandidateType;
  /** raddr/rport: the base of a srflx candidate, the mapped address of a relayed one. Informational only. */
  readonly related?: { readonly address: string; readonly port: number };
}

/**
 * Foundation of a local candidate: a short hash of type, base IP, server IP and transport, so two
 * candidates share it exactly when RFC 8445 §5.1.1.3 says they should.
 */
export function foundationOf(type: CandidateType, baseAddress: string, serverAddress = ''): string {
  return createHash('sha256').update(`${type}|${baseAddress}|${serverAddress}|udp`).digest('hex').slice(0, 8);
}

/** `candidate:F 1 udp P addr port typ T [raddr A rport P]` (RFC 8839 §5.1). */
export function formatCandidate(c: IceCandidate): string {
  const rel = c.related ? ` raddr ${c.related.address} rport ${c.related.port}` : '';
  return `candidate:${c.foundation} ${c.component} udp ${c.priority} ${c.address} ${c.port} typ ${c.type}${rel}`;
}

const TYPES: ReadonlySet<string> = new Set(['host', 'srflx', 'prflx', 'relay']);
const ICE_CHARS = /^[A-Za-z0-9+/]{1,32}$/;

/**
 * Parses the candidate attribute, with or without `a=` and `candidate:`. Returns a message for
 * anything this agent cannot use: TCP candidates, mDNS `.local` names (which would need
 * multicast), addresses that are not IP literals, out-of-range numbers. Extension attributes
 * after the mandatory part (generation, ufrag, network-id, ...) are ignored.
 */
export function parseCandidate(text: string): IceCandidate | string {
  const s = text.trim().replace(/^a=/, '').replace(/^candidate:/, '');
  const f = s.split(/\s+/);
  if (f.length < 8 || f[6] !== 'typ') return 'expected "foundation component transport priority address port typ type"';
  const [foundation, comp, transport, prio, addr, portText, , type] = f as [string, string, string, string, string, string, string, string];
  if (!ICE_CHARS.test(foundation)) return `foundation "${foundation}" is not 1-32 ice-chars`;
  if (transport.toLowerCase() !== 'udp') return `transport ${transport} is not supported (UDP only)`;
  const component = Number(comp);
  if (!Number.isInteger(component) || component < 1 || component > 256) return `component ${comp} is out of range`;
  const priority = Number(prio);
  if (!/^\d+$/.test(prio) || priority < 1 || priority > 0xffffffff) return `priority ${prio} is out of range`;
  const ip = canonicalIp(addr);
  if (!ip) return `address "${addr}" is not an IP literal (mDNS names are not resolved)`;
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) return `port ${portText} is out of range`;
  if (!TYPES.has(type)) return `candidate type "${type}" is unknown`;
  let related: IceCandidate['related'];
  for (let i = 8; i + 1 < f.length; i += 2) {
    if (f[i] === 'raddr') {
      const r = canonicalIp(f[i + 1]!);
      const rportAt = f.indexOf('rport', i);
      if (r && rportAt > 0) related = { address: r.address, port: Number(f[rportAt + 1]) };
    }
  }
  return {
    foundation, component, transport: 'udp', priority, address: ip.address, port, family: ip.family,
    type: type as CandidateType, ...(related ? { related } : {}),
  };
}

/** Lookup key for an address and port; addresses are canonical everywhere in the agent. */
export function addressKey(address: string, port: number): string {
  return `${address}|${port}`;
}

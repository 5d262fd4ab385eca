import { DIGEST_BYTES, MAX_PUBLISH_PORTS, MAX_SERVER_NAME_BYTES } from './constants.js';
import { fixed } from './control-codec-parts.js';
import type { Publish } from './control-messages.js';
import { TunnelError } from './errors.js';
import { malformed, nameBytes, type WireReader, type WireWriter } from './wire.js';

/**
 * The optional tail of PUBLISH (docs/tunnel-protocol.md, "PUBLISH extension"): absent for a
 * service on one port of its own, so that PUBLISH keeps its first layout byte for byte. When
 * present, a flags byte says which parts follow, in this order:
 *
 *   u8 flags     bit 0: port range; bit 1: server name; bit 2: pool; bit 3: health reported
 *                (only with bit 2); other bits 0; a flags byte of 0 is malformed
 *   [u16 ports]  the range holds `remote.port` and the next ports - 1 (2 to MAX_PUBLISH_PORTS)
 *   [u8 length | server name]  lowercase host name or `*.` wildcard, 1 to 253 bytes
 *   [name group | 32-byte proof]  joins the agent pool `group` (group-proof.ts)
 *
 * A range and a name exclude each other (a name is served on the gateway's shared port).
 */

const RANGE = 0x01;
const NAME = 0x02;
const POOL = 0x04;
const HEALTH_REPORTED = 0x08;
/** Lowercase LDH labels (and `_`), optionally behind `*.`; one canonical form on the wire. */
const SERVER_NAME = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

export function isValidServerName(name: string): boolean {
  return name.length >= 1 && name.length <= MAX_SERVER_NAME_BYTES && SERVER_NAME.test(name) && !name.split('.').some((l) => l.length > 63);
}

type Extension = Pick<Publish, 'ports' | 'serverName' | 'pool'>;

/** Bytes of the extension of `m` (0 when it has none); validates it (TunnelError 'bad-value'). */
export function publishExtensionBytes(m: Extension): number {
  if (m.ports === undefined && m.serverName === undefined && m.pool === undefined) return 0;
  if (m.ports !== undefined && m.serverName !== undefined) throw new TunnelError('bad-value', 'publish: a port range and a server name exclude each other');
  let bytes = 1;
  if (m.ports !== undefined) {
    if (!Number.isInteger(m.ports) || m.ports < 2 || m.ports > MAX_PUBLISH_PORTS) throw new TunnelError('bad-value', `publish: a range of ${m.ports} ports is not in 2-${MAX_PUBLISH_PORTS}`);
    bytes += 2;
  }
  if (m.serverName !== undefined) {
    if (!isValidServerName(m.serverName)) throw new TunnelError('bad-value', `publish: "${m.serverName.slice(0, 80)}" is not a lowercase host name`);
    bytes += 1 + m.serverName.length;
  }
  if (m.pool !== undefined) bytes += nameBytes(m.pool.group, 'pool group') + fixed(m.pool.proof, DIGEST_BYTES, 'group proof');
  return bytes;
}

export function writePublishExtension(w: WireWriter, m: Extension): void {
  const flags = (m.ports !== undefined ? RANGE : 0) | (m.serverName !== undefined ? NAME : 0) | (m.pool !== undefined ? POOL | (m.pool.healthReported ? HEALTH_REPORTED : 0) : 0);
  if (flags === 0) return;
  w.u8(flags);
  if (m.ports !== undefined) w.u16(m.ports);
  if (m.serverName !== undefined) w.name(m.serverName);
  if (m.pool !== undefined) w.name(m.pool.group).bytes(m.pool.proof);
}

/** The extension, when bytes are left after the name; {} when none are. */
export function readPublishExtension(r: WireReader): Extension {
  if (r.remaining === 0) return {};
  const flags = r.u8();
  if (flags === 0 || (flags & ~(RANGE | NAME | POOL | HEALTH_REPORTED)) !== 0 || (flags & RANGE && flags & NAME) || (flags & HEALTH_REPORTED && !(flags & POOL))) {
    throw malformed(`publish extension flags ${flags} are not a valid set of 1 (range), 2 (name), 4 (pool), 8 (health reported, with 4)`);
  }
  const out: { ports?: number; serverName?: string; pool?: Publish['pool'] } = {};
  if (flags & RANGE) {
    const ports = r.u16();
    if (ports < 2 || ports > MAX_PUBLISH_PORTS) throw malformed(`publish: a range of ${ports} ports is not in 2-${MAX_PUBLISH_PORTS}`);
    out.ports = ports;
  }
  if (flags & NAME) {
    const n = r.u8();
    const serverName = r.bytes(n).toString('latin1');
    if (!isValidServerName(serverName)) throw malformed(`publish: server name of ${n} bytes is not a lowercase host name`);
    out.serverName = serverName;
  }
  if (flags & POOL) {
    const group = r.name();
    out.pool = { group, proof: r.bytes(DIGEST_BYTES), healthReported: (flags & HEALTH_REPORTED) !== 0 };
  }
  return out;
}

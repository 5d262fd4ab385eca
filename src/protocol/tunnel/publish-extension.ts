import { MAX_PUBLISH_PORTS, MAX_SERVER_NAME_BYTES } from './constants.js';
import type { Publish } from './control-messages.js';
import { TunnelError } from './errors.js';
import { malformed, type WireReader, type WireWriter } from './wire.js';

/**
 * The optional tail of PUBLISH (docs/tunnel-protocol.md, "PUBLISH extension"): absent for a
 * service on one port of its own, so that PUBLISH keeps its first layout byte for byte. When
 * present:
 *
 *   u8 flags     bit 0: a port range follows; bit 1: a server name follows; other bits 0, not 0
 *   [u16 ports]  the range holds `remote.port` and the next ports - 1 (2 to MAX_PUBLISH_PORTS)
 *   [u8 length | server name]  lowercase host name or `*.` wildcard, 1 to 253 bytes
 *
 * A range and a name exclude each other (a name is served on the gateway's shared port).
 */

const RANGE = 0x01;
const NAME = 0x02;
/** Lowercase LDH labels (and `_`), optionally behind `*.`; one canonical form on the wire. */
const SERVER_NAME = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

export function isValidServerName(name: string): boolean {
  return name.length >= 1 && name.length <= MAX_SERVER_NAME_BYTES && SERVER_NAME.test(name) && !name.split('.').some((l) => l.length > 63);
}

type Extension = Pick<Publish, 'ports' | 'serverName'>;

/** Bytes of the extension of `m` (0 when it has none); validates it (TunnelError 'bad-value'). */
export function publishExtensionBytes(m: Extension): number {
  if (m.ports === undefined && m.serverName === undefined) return 0;
  if (m.ports !== undefined && m.serverName !== undefined) throw new TunnelError('bad-value', 'publish: a port range and a server name exclude each other');
  if (m.ports !== undefined) {
    if (!Number.isInteger(m.ports) || m.ports < 2 || m.ports > MAX_PUBLISH_PORTS) throw new TunnelError('bad-value', `publish: a range of ${m.ports} ports is not in 2-${MAX_PUBLISH_PORTS}`);
    return 3;
  }
  if (!isValidServerName(m.serverName!)) throw new TunnelError('bad-value', `publish: "${m.serverName!.slice(0, 80)}" is not a lowercase host name`);
  return 2 + m.serverName!.length;
}

export function writePublishExtension(w: WireWriter, m: Extension): void {
  if (m.ports !== undefined) w.u8(RANGE).u16(m.ports);
  else if (m.serverName !== undefined) w.u8(NAME).name(m.serverName);
}

/** The extension, when bytes are left after the name; {} when none are. */
export function readPublishExtension(r: WireReader): Extension {
  if (r.remaining === 0) return {};
  const flags = r.u8();
  if (flags === RANGE) {
    const ports = r.u16();
    if (ports < 2 || ports > MAX_PUBLISH_PORTS) throw malformed(`publish: a range of ${ports} ports is not in 2-${MAX_PUBLISH_PORTS}`);
    return { ports };
  }
  if (flags === NAME) {
    const n = r.u8();
    const serverName = r.bytes(n).toString('latin1');
    if (!isValidServerName(serverName)) throw malformed(`publish: server name of ${n} bytes is not a lowercase host name`);
    return { serverName };
  }
  throw malformed(`publish extension flags ${flags} are not one of 1 (range) or 2 (name)`);
}

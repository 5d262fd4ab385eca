import type { DatagramOrigin } from './control-messages.js';
import { FLAG_ORIGIN, FLAG_ORIGIN_PORT } from './constants.js';
import { WireReader, WireWriter, checkUint, encodeEndpoint, endpointBytes, type EncodedEndpoint } from './wire.js';

/**
 * The origin block that tells the agent which service and which public client a connectee tag
 * belongs to: u16 service id | u8 family | u16 port | 4 or 16 address bytes (9 or 21 bytes), then,
 * for a service published with a port range (flag FLAG_ORIGIN_PORT), the u16 public port the
 * client sent to (11 or 23 bytes). It rides in DATAGRAM frames and, encrypted, at the start of UDP
 * datagram plaintexts.
 */

export interface EncodedOrigin {
  readonly serviceId: number;
  readonly client: EncodedEndpoint;
  readonly port: number | undefined;
}

export function encodeOrigin(origin: DatagramOrigin): EncodedOrigin {
  checkUint(origin.serviceId, 0xffff, 'origin service id');
  if (origin.port !== undefined) checkUint(origin.port, 0xffff, 'origin public port');
  return { serviceId: origin.serviceId, client: encodeEndpoint(origin.client, 'origin client'), port: origin.port };
}

export function originBytes(o: EncodedOrigin): number {
  return 2 + endpointBytes(o.client) + (o.port === undefined ? 0 : 2);
}

/** The header / DATAGRAM flags an origin block is sent with. */
export function originFlags(o: EncodedOrigin | undefined): number {
  if (o === undefined) return 0;
  return o.port === undefined ? FLAG_ORIGIN : FLAG_ORIGIN | FLAG_ORIGIN_PORT;
}

export function writeOrigin(w: WireWriter, o: EncodedOrigin): void {
  w.u16(o.serviceId).endpoint(o.client);
  if (o.port !== undefined) w.u16(o.port);
}

/** Reads an origin block; `withPort` when the flags said FLAG_ORIGIN_PORT. */
export function readOrigin(r: WireReader, withPort = false): DatagramOrigin {
  const serviceId = r.u16();
  const client = r.endpoint();
  return withPort ? { serviceId, client, port: r.u16() } : { serviceId, client };
}

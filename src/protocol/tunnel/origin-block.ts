import type { DatagramOrigin } from './control-messages.js';
import { WireReader, WireWriter, checkUint, encodeEndpoint, endpointBytes, type EncodedEndpoint } from './wire.js';

/**
 * The origin block that tells the agent which service and which public client a connectee tag
 * belongs to: u16 service id | u8 family | u16 port | 4 or 16 address bytes (9 or 21 bytes).
 * It rides in DATAGRAM frames and, encrypted, at the start of UDP datagram plaintexts.
 */

export interface EncodedOrigin {
  readonly serviceId: number;
  readonly client: EncodedEndpoint;
}

export function encodeOrigin(origin: DatagramOrigin): EncodedOrigin {
  checkUint(origin.serviceId, 0xffff, 'origin service id');
  return { serviceId: origin.serviceId, client: encodeEndpoint(origin.client, 'origin client') };
}

export function originBytes(o: EncodedOrigin): number {
  return 2 + endpointBytes(o.client);
}

export function writeOrigin(w: WireWriter, o: EncodedOrigin): void {
  w.u16(o.serviceId).endpoint(o.client);
}

export function readOrigin(r: WireReader): DatagramOrigin {
  const serviceId = r.u16();
  return { serviceId, client: r.endpoint() };
}

import { AEAD_KEY_BYTES, DATAGRAM_EXPORTER_LABEL } from './constants.js';
import { exportTunnelKeyingMaterial, type TlsSessionLike } from './auth.js';
import type { TunnelRole } from './control-phase.js';
import { TunnelError } from './errors.js';

/**
 * Datagram keys from the TLS session (docs/tunnel-protocol.md, "Key derivation"):
 *
 *   material = TLS-Exporter("EXPORTER-sluice-datagram", context = u16 version, 64)
 *   agent-to-gateway key = material[0, 32)     gateway-to-agent key = material[32, 64)
 *
 * One key per direction, so the two ends never encrypt under the same (key, nonce) even though
 * both count sequence numbers from 0. A new TLS connection gives new keys; nothing is reused
 * across connections.
 */

export type Direction = 'agent-to-gateway' | 'gateway-to-agent';

export interface DatagramKeys {
  /** Key for datagrams this end sends. */
  readonly send: Buffer;
  readonly sendDirection: Direction;
  /** Key for datagrams this end receives. */
  readonly receive: Buffer;
  readonly receiveDirection: Direction;
}

export const DATAGRAM_KEY_MATERIAL_BYTES = 2 * AEAD_KEY_BYTES;

/** Both ends call this on their own TLS socket and get mirrored keys. Requires TLS 1.3. */
export function exportDatagramKeys(tls: TlsSessionLike, role: TunnelRole): DatagramKeys {
  return datagramKeysFromMaterial(exportTunnelKeyingMaterial(tls, DATAGRAM_EXPORTER_LABEL, DATAGRAM_KEY_MATERIAL_BYTES), role);
}

/** Splits 64 bytes of exported material into this role's send and receive keys (copies). */
export function datagramKeysFromMaterial(material: Uint8Array, role: TunnelRole): DatagramKeys {
  if (material.length !== DATAGRAM_KEY_MATERIAL_BYTES) {
    throw new TunnelError('bad-key', `datagram key material must be ${DATAGRAM_KEY_MATERIAL_BYTES} bytes, got ${material.length}`);
  }
  const up = Buffer.from(material.subarray(0, AEAD_KEY_BYTES));
  const down = Buffer.from(material.subarray(AEAD_KEY_BYTES));
  return role === 'agent'
    ? { send: up, sendDirection: 'agent-to-gateway', receive: down, receiveDirection: 'gateway-to-agent' }
    : { send: down, sendDirection: 'gateway-to-agent', receive: up, receiveDirection: 'agent-to-gateway' };
}

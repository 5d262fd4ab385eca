import { exportTunnelKeyingMaterial, type TlsSessionLike } from './auth.js';
import type { TunnelRole } from './control-phase.js';
import { DATA_IV_BYTES, DATA_KEY_BYTES } from './data-record.js';
import { TunnelError } from './errors.js';

/**
 * Keys of the sealed data connections of one control connection (docs/tunnel-protocol.md, "Data
 * connections"), from its TLS session, computed by both ends on their own socket:
 *
 *   token    = TLS-Exporter("EXPORTER-sluice-data-token", context 0x0001, 16)   one per control connection
 *   material = TLS-Exporter("EXPORTER-sluice-data", context = u64 BE counter, 56)
 *   agent->gateway key = material[0, 16)  iv = [16, 28);  gateway->agent key = [28, 44)  iv = [44, 56)
 *
 * The agent's HELLO record is its direction's sequence 0, so its data starts at 1.
 */

export const DATA_TOKEN_LABEL = 'EXPORTER-sluice-data-token';
export const DATA_KEYS_LABEL = 'EXPORTER-sluice-data';
export const DATA_TOKEN_BYTES = 16;
export const DATA_KEY_MATERIAL_BYTES = 2 * (DATA_KEY_BYTES + DATA_IV_BYTES);
/** Counters are u64 on the wire; this implementation uses those below 2^48 (the replay window's range). */
export const MAX_DATA_COUNTER = 2 ** 48 - 1;

/** One end's keys of one data connection: AES-128-GCM, a key and IV per direction, and the next sequence number of each. */
export interface DataKeys {
  readonly sealKey: Buffer;
  readonly sealIv: Buffer;
  readonly sealSeq: number;
  readonly openKey: Buffer;
  readonly openIv: Buffer;
  readonly openSeq: number;
}

/** The control connection's data token. Requires TLS 1.3. */
export function exportDataToken(tls: TlsSessionLike): Buffer {
  return exportTunnelKeyingMaterial(tls, DATA_TOKEN_LABEL, DATA_TOKEN_BYTES);
}

export function counterContext(counter: number): Buffer {
  if (!Number.isInteger(counter) || counter < 0 || counter > MAX_DATA_COUNTER) throw new TunnelError('bad-value', `data connection counter ${counter} is not in 0-2^48`);
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(counter));
  return b;
}

/** This role's keys of data connection `counter`. */
export function exportDataKeys(tls: TlsSessionLike, counter: number, role: TunnelRole): DataKeys {
  return dataKeysFromMaterial(exportTunnelKeyingMaterial(tls, DATA_KEYS_LABEL, DATA_KEY_MATERIAL_BYTES, counterContext(counter)), role);
}

/** Splits 56 bytes of material by role (views into `material`). */
export function dataKeysFromMaterial(material: Buffer, role: TunnelRole): DataKeys {
  if (material.length !== DATA_KEY_MATERIAL_BYTES) throw new TunnelError('bad-key', `data key material must be ${DATA_KEY_MATERIAL_BYTES} bytes, got ${material.length}`);
  const upKey = material.subarray(0, 16);
  const upIv = material.subarray(16, 28);
  const downKey = material.subarray(28, 44);
  const downIv = material.subarray(44, 56);
  return role === 'agent'
    ? { sealKey: upKey, sealIv: upIv, sealSeq: 1, openKey: downKey, openIv: downIv, openSeq: 0 }
    : { sealKey: downKey, sealIv: downIv, sealSeq: 0, openKey: upKey, openIv: upIv, openSeq: 1 };
}

import { timingSafeEqual } from 'node:crypto';
import type { DecodedStunMessage, IntegrityField } from './message.js';
import { computeIntegrity, type IntegrityAlgorithm } from './integrity-mac.js';

export { computeIntegrity, type IntegrityAlgorithm };

/** Checking a decoded message's integrity attribute; the HMAC itself is integrity-mac.ts. */
export type IntegrityResult = 'ok' | 'mismatch' | 'absent';

/**
 * Checks the integrity attribute of `algorithm` in a decoded message against `key`, in constant
 * time. A truncated MESSAGE-INTEGRITY-SHA256 is compared over its own length. 'absent' when the
 * message has no such attribute; the caller decides whether that is acceptable.
 */
export function verifyIntegrity(msg: DecodedStunMessage, key: Uint8Array, algorithm: IntegrityAlgorithm = 'sha1'): IntegrityResult {
  const field: IntegrityField | undefined = algorithm === 'sha1' ? msg.messageIntegrity : msg.messageIntegritySha256;
  if (!field) return 'absent';
  const mac = computeIntegrity(algorithm, key, msg.raw, field.offset, field.value.length).subarray(0, field.value.length);
  return timingSafeEqual(mac, field.value) ? 'ok' : 'mismatch';
}

/** The strongest integrity attribute present, for a receiver that accepts either. */
export function integrityAlgorithmOf(msg: DecodedStunMessage): IntegrityAlgorithm | undefined {
  if (msg.messageIntegritySha256) return 'sha256';
  if (msg.messageIntegrity) return 'sha1';
  return undefined;
}

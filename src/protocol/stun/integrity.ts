import { createHmac, timingSafeEqual } from 'node:crypto';
import { HEADER_BYTES } from './constants.js';
import type { DecodedStunMessage, IntegrityField } from './message.js';

/**
 * MESSAGE-INTEGRITY (HMAC-SHA1, 20 bytes, RFC 8489 §14.5) and MESSAGE-INTEGRITY-SHA256
 * (HMAC-SHA256, 16-32 bytes in steps of 4, §14.6). Both cover the header, with its length field
 * rewritten to end at the integrity attribute, and every attribute before it.
 */

export type IntegrityAlgorithm = 'sha1' | 'sha256';
export type IntegrityResult = 'ok' | 'mismatch' | 'absent';

/**
 * The HMAC over `message[0, attributeOffset)` with the header length set to
 * `attributeOffset - 20 + 4 + valueBytes`, i.e. as if the message ended after this attribute.
 */
export function computeIntegrity(
  algorithm: IntegrityAlgorithm,
  key: Uint8Array,
  message: Uint8Array,
  attributeOffset: number,
  valueBytes: number,
): Buffer {
  const header = Buffer.from(message.subarray(0, HEADER_BYTES));
  header.writeUInt16BE(attributeOffset - HEADER_BYTES + 4 + valueBytes, 2);
  return createHmac(algorithm, key).update(header).update(message.subarray(HEADER_BYTES, attributeOffset)).digest();
}

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

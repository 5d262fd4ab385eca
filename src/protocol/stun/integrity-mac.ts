import { createHmac } from 'node:crypto';
import { HEADER_BYTES } from './constants.js';

/**
 * MESSAGE-INTEGRITY (HMAC-SHA1, 20 bytes, RFC 8489 §14.5) and MESSAGE-INTEGRITY-SHA256
 * (HMAC-SHA256, 16-32 bytes in steps of 4, §14.6). Both cover the header, with its length field
 * rewritten to end at the integrity attribute, and every attribute before it.
 */

export type IntegrityAlgorithm = 'sha1' | 'sha256';

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

import { MAX_TAG, TAG_BYTES, TOKEN_PREFIX_BYTES } from './constants.js';
import { UdpexposerError } from './errors.js';

/**
 * Data frames between a udpexposer server and its client: `tag (u16 BE) || payload`.
 * Keepalives are not frames: an empty datagram, or a token in password mode.
 */

export interface Frame {
  readonly tag: number;
  /** A view into the decoded datagram; copy it before keeping it past the datagram's handler. */
  readonly payload: Buffer;
}

export type FrameDecoded = { readonly kind: 'ok'; readonly value: Frame } | { readonly kind: 'too-short' };

/** Splits a datagram into tag and payload. A 2-byte datagram is a frame with an empty payload. */
export function decodeFrame(buf: Buffer): FrameDecoded {
  if (buf.length < TAG_BYTES) return { kind: 'too-short' };
  return { kind: 'ok', value: { tag: buf.readUInt16BE(0), payload: buf.subarray(TAG_BYTES) } };
}

/** The two tag bytes alone, so a sender can pass `[tagBytes(t), payload]` to dgram without copying. */
export function tagBytes(tag: number): Buffer {
  checkTag(tag);
  const out = Buffer.allocUnsafe(TAG_BYTES);
  out.writeUInt16BE(tag, 0);
  return out;
}

export function encodeFrame(tag: number, payload: Uint8Array): Buffer {
  checkTag(tag);
  const out = Buffer.allocUnsafe(TAG_BYTES + payload.length);
  out.writeUInt16BE(tag, 0);
  out.set(payload, TAG_BYTES);
  return out;
}

/** The tag after `tag`: udpexposer increments a u16 before use, wrapping 65535 to 0. */
export function nextTag(tag: number): number {
  checkTag(tag);
  return tag === MAX_TAG ? 0 : tag + 1;
}

/** True when the datagram begins with the 21-byte token prefix (`{"alg":"HS256"}` and a dot). */
export function hasTokenPrefix(buf: Buffer): boolean {
  return buf.length >= TOKEN_PREFIX_BYTES.length && buf.compare(TOKEN_PREFIX_BYTES, 0, TOKEN_PREFIX_BYTES.length, 0, TOKEN_PREFIX_BYTES.length) === 0;
}

/**
 * What a udpexposer server makes of a datagram before looking at its source (protocols.md §1.3):
 * without a password an empty datagram is a keepalive; with one, a datagram that starts with the
 * token prefix is an authentication attempt (and falls back to data if it does not verify).
 */
export type ServerDatagramKind = 'keepalive' | 'token' | 'data';

export function classifyServerDatagram(buf: Buffer, passwordMode: boolean): ServerDatagramKind {
  if (passwordMode) return hasTokenPrefix(buf) ? 'token' : 'data';
  return buf.length === 0 ? 'keepalive' : 'data';
}

function checkTag(tag: number): void {
  if (!Number.isInteger(tag) || tag < 0 || tag > MAX_TAG) throw new UdpexposerError(`tag ${tag} is not a u16`);
}

/**
 * One QUIC long-header packet inside a datagram (RFC 9000 section 17.2, RFC 9369 section 3.2),
 * and the opening of a client Initial: header protection removed with AES-128-ECB, the payload
 * decrypted with AES-128-GCM (RFC 9001 sections 5.3 and 5.4). Pure over Buffer; never throws.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { type InitialKeys, type QuicVersionParams, quicVersionParams } from './initial-keys.js';
import { QuicCursor } from './varint.js';

const MAX_CID = 20;
const SAMPLE = 16;
const TAG = 16;

export type LongHeaderError =
  /** The fixed bit is clear, or the header does not add up inside the datagram. */
  | 'not-quic'
  /** A short-header (1-RTT) packet. */
  | 'short-header'
  /** A version this codec does not open (version negotiation, drafts, greased versions). */
  | 'unsupported-version';

export interface LongHeader {
  readonly version: number;
  readonly params: QuicVersionParams;
  readonly initial: boolean;
  readonly dcid: Buffer;
  readonly scid: Buffer;
  /** Offset of the packet's first byte in the datagram. */
  readonly start: number;
  /** Offset of the (protected) packet number in the datagram. */
  readonly pnOffset: number;
  /** Offset just past this packet: the next coalesced packet starts there. */
  readonly end: number;
}

/** Reads the long header of the packet at `at`. */
export function readLongHeader(dgram: Buffer, at: number): LongHeader | LongHeaderError {
  const c = new QuicCursor(dgram, at);
  const first = c.u8();
  if (!c.ok) return 'not-quic';
  if ((first & 0x80) === 0) return (first & 0x40) !== 0 ? 'short-header' : 'not-quic';
  if ((first & 0x40) === 0) return 'not-quic';
  if (c.left < 4) return 'not-quic';
  const version = dgram.readUInt32BE(c.at);
  c.skip(4);
  const params = quicVersionParams(version);
  if (params === undefined) return 'unsupported-version';
  const dcidLen = c.u8();
  if (dcidLen > MAX_CID) return 'not-quic';
  const dcid = c.bytes(dcidLen);
  const scidLen = c.u8();
  if (scidLen > MAX_CID) return 'not-quic';
  const scid = c.bytes(scidLen);
  const type = (first >> 4) & 0x03;
  const initial = type === params.initialType;
  if (initial) c.skip(c.varint()); // token
  else if (isRetry(params, type)) return 'not-quic'; // servers send Retry, clients never do
  const length = c.varint();
  if (!c.ok || length > c.left || length < 1) return 'not-quic';
  return { version, params, initial, dcid, scid, start: at, pnOffset: c.at, end: c.at + length };
}

function isRetry(params: QuicVersionParams, type: number): boolean {
  return type === (params.initialType === 0 ? 0b11 : 0b00);
}

/** Why a client Initial would not open. */
export type OpenError =
  /** Too short for a packet number and a header protection sample. */
  | 'malformed'
  /** The AEAD tag did not verify: other keys (not a client Initial to this DCID) or damaged bytes. */
  | 'decrypt-failed';

export interface OpenedInitial {
  readonly packetNumber: number;
  /** The decrypted frames (a fresh buffer). */
  readonly payload: Buffer;
}

/** Removes header protection from and decrypts the Initial packet `h` with the client's Initial keys. */
export function openInitial(dgram: Buffer, h: LongHeader, keys: InitialKeys): OpenedInitial | OpenError {
  const sampleAt = h.pnOffset + 4;
  if (sampleAt + SAMPLE > h.end) return 'malformed';
  const ecb = createCipheriv('aes-128-ecb', keys.hp, null);
  ecb.setAutoPadding(false);
  const mask = ecb.update(dgram.subarray(sampleAt, sampleAt + SAMPLE));
  const start = h.start;
  const first = dgram[start]! ^ (mask[0]! & 0x0f);
  const pnLen = (first & 0x03) + 1;
  const header = Buffer.from(dgram.subarray(start, h.pnOffset + pnLen));
  header[0] = first;
  let pn = 0;
  for (let i = 0; i < pnLen; i++) {
    const at = h.pnOffset - start + i;
    header[at] = header[at]! ^ mask[1 + i]!;
    pn = pn * 256 + header[at]!;
  }
  const cipherAt = h.pnOffset + pnLen;
  if (h.end - cipherAt < TAG + 1) return 'malformed';
  // The nonce is the IV XOR the packet number. A client's first Initials number from 0, so the
  // truncated number is the full one.
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < pnLen; i++) nonce[nonce.length - 1 - i] = nonce[nonce.length - 1 - i]! ^ header[header.length - 1 - i]!;
  try {
    const gcm = createDecipheriv('aes-128-gcm', keys.key, nonce);
    gcm.setAAD(header);
    gcm.setAuthTag(dgram.subarray(h.end - TAG, h.end));
    const payload = Buffer.concat([gcm.update(dgram.subarray(cipherAt, h.end - TAG)), gcm.final()]);
    // Reserved bits set after removing protection: a protocol violation (RFC 9000 section 17.2).
    if ((first & 0x0c) !== 0) return 'malformed';
    return { packetNumber: pn, payload };
  } catch {
    return 'decrypt-failed';
  }
}


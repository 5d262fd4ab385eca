import { timingSafeEqual } from 'node:crypto';
import {
  decodeReplyClaims, decodeRequestClaims, encodeReplyClaims, encodeRequestClaims,
  type ClaimsDecoded, type ReplyClaims, type RequestClaims,
} from './claims.js';
import { RECEIVE_BUFFER_BYTES, TOKEN_HEADER_B64 } from './constants.js';
import { hasTokenPrefix } from './frame.js';
import { JsonSyntax, parseJson } from './json.js';
import type { UdpexposerKey } from './key.js';

/**
 * Password-mode tokens: compact JWS with HS256, as the Rust `jwt` 0.16 crate writes them:
 * `B64URL('{"alg":"HS256"}') "." B64URL(claims) "." B64URL(HMAC-SHA256(key, first "." second))`,
 * unpadded base64url. Encoding is byte-exact; verification follows the crate's order (three
 * parts, header with alg HS256, MAC in constant time, then claims). Stricter than the crate in
 * one respect: base64url must be canonical (no `=`, no stray bits), because nobody emits
 * anything else and a lenient decoder makes many spellings of one token.
 */

export type TokenRejectReason =
  /** Longer than udpexposer's 2048-byte receive buffer. */
  | 'too-long'
  /** Not three dot-separated canonical base64url parts of ASCII. */
  | 'malformed'
  /** The header is not JSON with `"alg":"HS256"`. */
  | 'bad-header'
  /** The MAC does not match under this key. */
  | 'bad-signature'
  /** Signed, but the claims are not of the expected type. */
  | 'bad-claims';

export type TokenVerified<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: TokenRejectReason };

const B64URL = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeRequestToken(claims: RequestClaims, key: UdpexposerKey): Buffer {
  return Buffer.from(signToken(encodeRequestClaims(claims), key), 'ascii');
}

export function encodeReplyToken(reply: ReplyClaims, key: UdpexposerKey): Buffer {
  return Buffer.from(signToken(encodeReplyClaims(reply), key), 'ascii');
}

/** Signs a claims JSON text as an HS256 compact JWS with udpexposer's fixed header. */
export function signToken(claimsJson: string, key: UdpexposerKey): string {
  const input = `${TOKEN_HEADER_B64}.${Buffer.from(claimsJson, 'utf8').toString('base64url')}`;
  return `${input}.${key.mac(input).toString('base64url')}`;
}

/** Verifies a token and returns its claims as JSON text (the typed verifiers below are usually what you want). */
export function verifyToken(buf: Buffer, key: UdpexposerKey): TokenVerified<string> {
  if (buf.length > RECEIVE_BUFFER_BYTES) return { ok: false, reason: 'too-long' };
  const text = buf.toString('latin1');
  const first = text.indexOf('.');
  const second = first < 0 ? -1 : text.indexOf('.', first + 1);
  if (second < 0 || text.indexOf('.', second + 1) >= 0) return { ok: false, reason: 'malformed' };
  const parts = [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)] as const;
  const bytes = parts.map(canonicalB64url);
  if (bytes[0] === undefined || bytes[1] === undefined || bytes[2] === undefined) return { ok: false, reason: 'malformed' };
  if (!headerIsHs256(bytes[0])) return { ok: false, reason: 'bad-header' };
  const expected = key.mac(text.slice(0, second));
  if (bytes[2].length !== expected.length || !timingSafeEqual(bytes[2], expected)) return { ok: false, reason: 'bad-signature' };
  try {
    return { ok: true, value: utf8.decode(bytes[1]) };
  } catch {
    return { ok: false, reason: 'bad-claims' };
  }
}

export function verifyRequestToken(buf: Buffer, key: UdpexposerKey): TokenVerified<RequestClaims> {
  return typed(verifyToken(buf, key), decodeRequestClaims);
}

export function verifyReplyToken(buf: Buffer, key: UdpexposerKey): TokenVerified<ReplyClaims> {
  return typed(verifyToken(buf, key), decodeReplyClaims);
}

/** Cheap pre-check used before verifying: does this datagram claim to be a token at all? */
export function looksLikeToken(buf: Buffer): boolean {
  return hasTokenPrefix(buf);
}

function typed<T>(v: TokenVerified<string>, decode: (text: string) => ClaimsDecoded<T>): TokenVerified<T> {
  if (!v.ok) return v;
  const c = decode(v.value);
  return c.ok ? { ok: true, value: c.value } : { ok: false, reason: 'bad-claims' };
}

function canonicalB64url(s: string): Buffer | undefined {
  if (s.length % 4 === 1 || !B64URL.test(s)) return undefined;
  const b = Buffer.from(s, 'base64url');
  return b.toString('base64url') === s ? b : undefined;
}

function headerIsHs256(bytes: Buffer): boolean {
  try {
    const v = parseJson(utf8.decode(bytes));
    if (v.t !== 'obj') return false;
    const algs = v.members.filter(([k]) => k === 'alg');
    return algs.length === 1 && algs[0]![1].t === 'str' && algs[0]![1].v === 'HS256';
  } catch (err) {
    if (err instanceof JsonSyntax || err instanceof TypeError) return false;
    throw err;
  }
}

import { ProxyHeaderError } from './errors.js';
import { decodeV1 } from './v1-decoder.js';
import { decodeV2, type V2DecodeSettings } from './v2-decoder.js';
import {
  V2_DEFAULT_MAX_HEADER_BYTES,
  V2_FIXED_BYTES,
  type ProxyDecodeOptions,
  type ProxyDecodeResult,
  type ProxyHeaderV2,
} from './types.js';

const V1_FIRST = 0x50; // 'P'
const NEED_MORE: ProxyDecodeResult = Object.freeze({ kind: 'need-more' });
const V2_FIRST = 0x0d; // '\r'

/**
 * Decodes the PROXY header at the start of `buf`, v1 or v2 (or only the configured one).
 *
 * - `{ kind: 'need-more' }`: everything so far is a valid beginning; call again with more bytes
 *   (the whole buffer from the start, not only the new bytes). With `final`, this is an error.
 * - `{ kind: 'ok', header, length }`: the header is `buf[0, length)`; `buf.subarray(length)` is
 *   payload, untouched.
 * - Throws ProxyHeaderError (code SLUICE_ERR_PROXY_HEADER_INVALID, with a `reason`) for anything
 *   else, as soon as the first wrong byte is in: the first byte already tells a client that sent
 *   no header ('not-proxy'). Nothing else is thrown for any input.
 *
 * Pure: no I/O, no timers, no logging; `buf` is not modified, and TLV values are views into it.
 * The caller owns the timeout and the buffering cap (v1 never needs more than 107 bytes, v2 never
 * more than `maxV2HeaderBytes`).
 */
export function decodeProxyHeader(buf: Buffer, options?: ProxyDecodeOptions): ProxyDecodeResult {
  const version = options?.version ?? 'any';
  const final = options?.final ?? false;
  if (buf.length === 0) {
    if (final) throw new ProxyHeaderError('truncated', 'no bytes at all', 0);
    return NEED_MORE;
  }
  const first = buf[0];
  if (first === V2_FIRST) {
    if (version === 1) throw new ProxyHeaderError('version-not-allowed', 'v2 header where only v1 is accepted', 0);
    return decodeV2(buf, v2Settings(options, final));
  }
  if (first === V1_FIRST) {
    if (version === 2) throw new ProxyHeaderError('version-not-allowed', 'v1 header where only v2 is accepted', 0);
    return decodeV1(buf, final);
  }
  throw new ProxyHeaderError('not-proxy', 'first byte starts neither a v1 nor a v2 header', 0);
}

/**
 * Decodes the v2 header at the start of one UDP datagram. The current spec (2026/04/27) puts a
 * complete header in every datagram and has no v1 form for UDP, so this is decodeProxyHeader with
 * version 2 and `final`: it never returns need-more. The payload is `datagram.subarray(length)`.
 * The transport nibble is reported, not enforced; the listener decides what it accepts.
 */
export function decodeProxyDatagram(
  datagram: Buffer,
  options?: Pick<ProxyDecodeOptions, 'validateTlvs' | 'maxV2HeaderBytes'>,
): { header: ProxyHeaderV2; length: number } {
  if (datagram.length === 0) throw new ProxyHeaderError('truncated', 'empty datagram', 0);
  if (datagram[0] !== V2_FIRST) {
    const reason = datagram[0] === V1_FIRST ? 'version-not-allowed' : 'not-proxy';
    throw new ProxyHeaderError(reason, 'a datagram must start with a v2 header', 0);
  }
  const r = decodeV2(datagram, v2Settings(options, true));
  if (r.kind !== 'ok') throw new ProxyHeaderError('truncated', 'datagram ended inside the header', datagram.length);
  return { header: r.header as ProxyHeaderV2, length: r.length };
}

function v2Settings(options: ProxyDecodeOptions | undefined, final: boolean): V2DecodeSettings {
  const max = options?.maxV2HeaderBytes ?? V2_DEFAULT_MAX_HEADER_BYTES;
  if (!Number.isInteger(max) || max < V2_FIXED_BYTES) {
    throw new RangeError(`maxV2HeaderBytes must be an integer >= ${V2_FIXED_BYTES}, got ${max}`);
  }
  return { validateTlvs: options?.validateTlvs ?? true, maxHeaderBytes: max, final };
}

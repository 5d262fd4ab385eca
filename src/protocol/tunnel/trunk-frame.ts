import { TunnelError } from './errors.js';
import { encodeDataHello, readDataHello, DATA_HELLO_MAGIC, type DataHello } from './data-hello.js';

/**
 * A trunk's frames (docs/tunnel-protocol.md, "Trunks"): the plaintext of one sealed record of type
 * TRUNK_RECORD_TYPE on a trunk connection (same record format, keys and KEY_UPDATE as a data
 * connection's):
 *
 *   u32 BE stream id | u8 kind | body
 *   DATA 1: 1..65531 bytes   END 2: empty   RESET 3: empty   CREDIT 4: u32 BE increment (1..2^31-1)
 *   READY 5: empty (agent to gateway, before anything else of a stream: the trunk is alive for it)
 *
 * The native engine reads and writes them (native/src/stream-trunk.cc); this codec is the format's
 * reference for tests and tools.
 */

export const TRUNK_RECORD_TYPE = 6;
export const TrunkFrameKind = { data: 1, end: 2, reset: 3, credit: 4, ready: 5 } as const;
export type TrunkFrameKindByte = (typeof TrunkFrameKind)[keyof typeof TrunkFrameKind];
export const TRUNK_FRAME_HEADER_BYTES = 5;
export const MAX_TRUNK_DATA_BYTES = 65_536 - TRUNK_FRAME_HEADER_BYTES;
const MAX_CREDIT = 0x7fff_ffff;

export type TrunkFrame =
  | { readonly kind: 'data'; readonly stream: number; readonly data: Buffer }
  | { readonly kind: 'end' | 'reset' | 'ready'; readonly stream: number }
  | { readonly kind: 'credit'; readonly stream: number; readonly increment: number };

export function encodeTrunkFrame(f: TrunkFrame): Buffer {
  if (!Number.isInteger(f.stream) || f.stream < 0 || f.stream > 0xffff_ffff) throw new TunnelError('bad-value', `trunk stream id ${f.stream} is not a u32`);
  const body = f.kind === 'data' ? f.data : f.kind === 'credit' ? u32(f.increment) : Buffer.alloc(0);
  if (f.kind === 'data' && (body.length < 1 || body.length > MAX_TRUNK_DATA_BYTES)) throw new TunnelError('bad-value', `trunk DATA carries 1..${MAX_TRUNK_DATA_BYTES} bytes, got ${body.length}`);
  if (f.kind === 'credit' && (f.increment < 1 || f.increment > MAX_CREDIT)) throw new TunnelError('bad-value', `trunk CREDIT increment ${f.increment} is not in 1..2^31-1`);
  const out = Buffer.allocUnsafe(TRUNK_FRAME_HEADER_BYTES + body.length);
  out.writeUInt32BE(f.stream, 0);
  out[4] = TrunkFrameKind[f.kind];
  body.copy(out, TRUNK_FRAME_HEADER_BYTES);
  return out;
}

/** One frame from a TRUNK record's plaintext; TunnelError `malformed` names what is wrong. */
export function decodeTrunkFrame(plain: Buffer): TrunkFrame {
  if (plain.length < TRUNK_FRAME_HEADER_BYTES) throw new TunnelError('malformed', `a trunk frame has at least ${TRUNK_FRAME_HEADER_BYTES} bytes, got ${plain.length}`);
  const stream = plain.readUInt32BE(0);
  const kind = plain[4];
  const body = plain.subarray(TRUNK_FRAME_HEADER_BYTES);
  switch (kind) {
    case TrunkFrameKind.data:
      if (body.length < 1) throw new TunnelError('malformed', 'a trunk DATA frame without bytes');
      return { kind: 'data', stream, data: body };
    case TrunkFrameKind.end:
    case TrunkFrameKind.reset:
    case TrunkFrameKind.ready: {
      const name = kind === TrunkFrameKind.end ? 'end' : kind === TrunkFrameKind.reset ? 'reset' : 'ready';
      if (body.length !== 0) throw new TunnelError('malformed', `a trunk ${name.toUpperCase()} frame with ${body.length} body bytes`);
      return { kind: name, stream };
    }
    case TrunkFrameKind.credit: {
      const increment = body.length === 4 ? body.readUInt32BE(0) : 0;
      if (increment < 1 || increment > MAX_CREDIT) throw new TunnelError('malformed', 'a trunk CREDIT frame needs a u32 increment in 1..2^31-1');
      return { kind: 'credit', stream, increment };
    }
    default:
      throw new TunnelError('malformed', `trunk frame kind ${kind} is not defined`);
  }
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/**
 * A trunk's hello: a data connection's hello (data-hello.ts) with the magic "SLT1" instead of
 * "SLD1", so the gateway keeps the connection as a trunk, not as an idle data connection. Same
 * token, counter, HELLO record, checks and replay window.
 */
export const TRUNK_HELLO_MAGIC = Buffer.from('SLT1', 'latin1');

export function encodeTrunkHello(token: Buffer, counter: number, key: Buffer, iv: Buffer): Buffer {
  const out = encodeDataHello(token, counter, key, iv);
  TRUNK_HELLO_MAGIC.copy(out, 0);
  return out;
}

/** True when 48 hello bytes start with the trunk's magic. */
export function isTrunkHello(buf: Buffer): boolean {
  return buf.length >= 4 && buf.subarray(0, 4).equals(TRUNK_HELLO_MAGIC);
}

/** The unauthenticated fields of a trunk's hello (as readDataHello's; `bytes` carries the data magic for verifyDataHello's record offset only). */
export function readTrunkHello(buf: Buffer): DataHello {
  if (!isTrunkHello(buf)) throw new TunnelError('malformed', 'not a trunk hello');
  const copy = Buffer.from(buf);
  DATA_HELLO_MAGIC.copy(copy, 0);
  return readDataHello(copy);
}

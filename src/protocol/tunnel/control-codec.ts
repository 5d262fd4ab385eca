import {
  FRAME_HEADER_BYTES, FrameType, MAX_DATAGRAM_PAYLOAD_BYTES, MAX_FRAME_BYTES, MAX_STREAM_DATA_BYTES, NONCE_BYTES, DIGEST_BYTES,
  FLAG_ORIGIN, FLAG_ORIGIN_PORT,
} from './constants.js';
import { PROXY_PROTOCOL_MODES, REFUSAL_CODES, SERVICE_TRANSPORTS, STREAM_RESET_CODES, type ControlMessage, type ControlMessageType } from './control-messages.js';
import {
  enumByte, enumRead, ep1, ep2, fixed, readStreamId, sized, readWindow, reasonPrep, refusalByte, streamId, tagOk, u16, u32, window,
  type BodyCodec, type Prep,
} from './control-codec-parts.js';
import { PEER_CODECS } from './control-codec-peers.js';
import { POOL_CODECS } from './control-codec-pools.js';
import { TunnelError } from './errors.js';
import { MAX_DATA_COUNTER } from './data-keys.js';
import { encodeOrigin, originBytes, originFlags, readOrigin, writeOrigin } from './origin-block.js';
import { publishExtensionBytes, readPublishExtension, writePublishExtension } from './publish-extension.js';
import { WireReader, WireWriter, malformed, nameBytes } from './wire.js';

/**
 * Control frames: u32 length | u8 type | body, where length = 1 + body bytes. Pure functions over
 * Buffer (STYLE.md 12): "need more bytes" is a result; anything else that is wrong throws a
 * TunnelError (code SLUICE_ERR_TUNNEL_AUTH) and the connection must be closed, since framing is lost.
 */

const CODECS: { [T in ControlMessageType]: BodyCodec<T> } = {
  // u16 version | u32 datagram key id | u32 resume key id | u32 stream window | name
  hello: {
    byte: FrameType.hello,
    size: (m) => {
      u16(m.version, 'version');
      u32(m.datagramKeyId, 'datagram key id');
      u32(m.resumeKeyId, 'resume key id');
      window(m.streamWindow, 'stream window');
      return 14 + nameBytes(m.name, 'agent name');
    },
    write: (w, m) => void w.u16(m.version).u32(m.datagramKeyId).u32(m.resumeKeyId).u32(m.streamWindow).name(m.name),
    read: (r) => {
      const version = r.u16();
      const datagramKeyId = r.u32();
      const resumeKeyId = r.u32();
      const streamWindow = readWindow(r, 'stream window');
      return { type: 'hello', version, name: r.name(), datagramKeyId, resumeKeyId, streamWindow };
    },
  },
  // 32-byte nonce
  challenge: {
    byte: FrameType.challenge,
    size: (m) => fixed(m.nonce, NONCE_BYTES, 'challenge nonce'),
    write: (w, m) => void w.bytes(m.nonce),
    read: (r) => ({ type: 'challenge', nonce: r.bytes(NONCE_BYTES) }),
  },
  // 32-byte digest
  auth: {
    byte: FrameType.auth,
    size: (m) => fixed(m.digest, DIGEST_BYTES, 'auth digest'),
    write: (w, m) => void w.bytes(m.digest),
    read: (r) => ({ type: 'auth', digest: r.bytes(DIGEST_BYTES) }),
  },
  // u32 datagram key id | u8 flags (bit 0 resumed) | u32 stream window | u32 keepalive ms | 32-byte proof
  'auth-ok': {
    byte: FrameType.authOk,
    size: (m) => {
      u32(m.datagramKeyId, 'datagram key id');
      window(m.streamWindow, 'stream window');
      u32(m.keepaliveIntervalMs, 'keepalive interval');
      return 13 + fixed(m.proof, DIGEST_BYTES, 'gateway proof');
    },
    write: (w, m) => void w.u32(m.datagramKeyId).u8(m.resumed ? 1 : 0).u32(m.streamWindow).u32(m.keepaliveIntervalMs).bytes(m.proof),
    read: (r) => {
      const datagramKeyId = r.u32();
      const flags = r.u8();
      if (flags > 1) throw malformed(`auth-ok flags ${flags} has undefined bits`);
      const streamWindow = readWindow(r, 'stream window');
      const keepaliveIntervalMs = r.u32();
      return { type: 'auth-ok', datagramKeyId, resumed: flags === 1, streamWindow, keepaliveIntervalMs, proof: r.bytes(DIGEST_BYTES) };
    },
  },
  // u8 code | u16 length | UTF-8 message
  'auth-error': {
    byte: FrameType.authError,
    size: (m, p) => 1 + reasonPrep(p, m.message),
    write: (w, m, p) => void w.u8(refusalByte(m.code)).reason(p.text!),
    read: (r) => ({ type: 'auth-error', code: enumRead(REFUSAL_CODES, r.u8(), 'refusal code'), message: r.reason() }),
  },
  goaway: {
    byte: FrameType.goaway,
    size: (m, p) => 1 + reasonPrep(p, m.message),
    write: (w, m, p) => void w.u8(refusalByte(m.code)).reason(p.text!),
    read: (r) => ({ type: 'goaway', code: enumRead(REFUSAL_CODES, r.u8(), 'refusal code'), message: r.reason() }),
  },
  // u16 service id | u8 transport | u8 proxy protocol | endpoint remote | name | [extension] (publish-extension.ts)
  publish: {
    byte: FrameType.publish,
    size: (m, p) => {
      u16(m.serviceId, 'service id');
      return 4 + ep1(p, m.remote, 'publish remote') + nameBytes(m.name, 'service name') + publishExtensionBytes(m);
    },
    write: (w, m, p) => {
      w.u16(m.serviceId).u8(enumByte(SERVICE_TRANSPORTS, m.transport, 'transport'))
        .u8(enumByte(PROXY_PROTOCOL_MODES, m.proxyProtocol, 'proxy protocol')).endpoint(p.e1!).name(m.name);
      writePublishExtension(w, m);
    },
    read: (r) => {
      const serviceId = r.u16();
      const transport = enumRead(SERVICE_TRANSPORTS, r.u8(), 'transport');
      const proxyProtocol = enumRead(PROXY_PROTOCOL_MODES, r.u8(), 'proxy protocol');
      const remote = r.endpoint();
      return { type: 'publish', serviceId, name: r.name(), transport, remote, proxyProtocol, ...readPublishExtension(r) };
    },
  },
  // u16 service id | endpoint bound
  'publish-ok': {
    byte: FrameType.publishOk,
    size: (m, p) => {
      u16(m.serviceId, 'service id');
      return 2 + ep1(p, m.bound, 'publish bound');
    },
    write: (w, m, p) => void w.u16(m.serviceId).endpoint(p.e1!),
    read: (r) => ({ type: 'publish-ok', serviceId: r.u16(), bound: r.endpoint() }),
  },
  // u16 service id | u8 code | u16 length | UTF-8 message
  'publish-error': {
    byte: FrameType.publishError,
    size: (m, p) => {
      u16(m.serviceId, 'service id');
      return 3 + reasonPrep(p, m.message);
    },
    write: (w, m, p) => void w.u16(m.serviceId).u8(refusalByte(m.code)).reason(p.text!),
    read: (r) => ({ type: 'publish-error', serviceId: r.u16(), code: enumRead(REFUSAL_CODES, r.u8(), 'refusal code'), message: r.reason() }),
  },
  unpublish: {
    byte: FrameType.unpublish,
    size: (m) => {
      u16(m.serviceId, 'service id');
      return 2;
    },
    write: (w, m) => void w.u16(m.serviceId),
    read: (r) => ({ type: 'unpublish', serviceId: r.u16() }),
  },
  // u32 stream id | u16 service id | endpoint client | endpoint server | [u64 data connection counter]
  'stream-open': {
    byte: FrameType.streamOpen,
    size: (m, p) => {
      streamId(m.streamId);
      u16(m.serviceId, 'service id');
      if (m.dataConnection !== undefined && !(Number.isInteger(m.dataConnection) && m.dataConnection >= 0 && m.dataConnection <= MAX_DATA_COUNTER)) {
        throw new TunnelError('bad-value', `data connection counter ${m.dataConnection} is not in 0-2^48`);
      }
      return 6 + ep1(p, m.client, 'stream client') + ep2(p, m.server, 'stream server') + (m.dataConnection === undefined ? 0 : 8);
    },
    write: (w, m, p) => {
      w.u32(m.streamId).u16(m.serviceId).endpoint(p.e1!).endpoint(p.e2!);
      if (m.dataConnection !== undefined) w.u32(Math.floor(m.dataConnection / 0x1_0000_0000)).u32(m.dataConnection >>> 0);
    },
    read: (r) => {
      const m = { type: 'stream-open' as const, streamId: readStreamId(r), serviceId: r.u16(), client: r.endpoint(), server: r.endpoint() };
      if (r.remaining === 0) return m;
      const hi = r.u32();
      if (hi > 0xffff) throw malformed(`data connection counter ${hi} * 2^32 is out of range`);
      return { ...m, dataConnection: hi * 0x1_0000_0000 + r.u32() };
    },
  },
  'stream-accept': {
    byte: FrameType.streamAccept,
    size: (m) => {
      streamId(m.streamId);
      return 4;
    },
    write: (w, m) => void w.u32(m.streamId),
    read: (r) => ({ type: 'stream-accept', streamId: readStreamId(r) }),
  },
  // u32 stream id | data (1 to 16384 bytes)
  'stream-data': {
    byte: FrameType.streamData,
    size: (m) => {
      streamId(m.streamId);
      return 4 + sized(m.data, 1, MAX_STREAM_DATA_BYTES, 'stream data');
    },
    write: (w, m) => void w.u32(m.streamId).bytes(m.data),
    read: (r) => {
      const id = readStreamId(r);
      const n = r.remaining;
      if (n < 1 || n > MAX_STREAM_DATA_BYTES) throw malformed(`stream data of ${n} bytes is not in 1-${MAX_STREAM_DATA_BYTES}`);
      return { type: 'stream-data', streamId: id, data: r.rest() };
    },
  },
  'stream-end': {
    byte: FrameType.streamEnd,
    size: (m) => {
      streamId(m.streamId);
      return 4;
    },
    write: (w, m) => void w.u32(m.streamId),
    read: (r) => ({ type: 'stream-end', streamId: readStreamId(r) }),
  },
  // u32 stream id | u8 code
  'stream-reset': {
    byte: FrameType.streamReset,
    size: (m) => {
      streamId(m.streamId);
      enumByte(STREAM_RESET_CODES, m.code, 'reset code');
      return 5;
    },
    write: (w, m) => void w.u32(m.streamId).u8(enumByte(STREAM_RESET_CODES, m.code, 'reset code')),
    read: (r) => ({ type: 'stream-reset', streamId: readStreamId(r), code: enumRead(STREAM_RESET_CODES, r.u8(), 'reset code') }),
  },
  // u32 stream id | u32 increment (1 to 2^31-1)
  'window-update': {
    byte: FrameType.windowUpdate,
    size: (m) => {
      streamId(m.streamId);
      window(m.increment, 'window increment');
      return 8;
    },
    write: (w, m) => void w.u32(m.streamId).u32(m.increment),
    read: (r) => ({ type: 'window-update', streamId: readStreamId(r), increment: readWindow(r, 'window increment') }),
  },
  // u32 tag | u8 flags (bit 0 origin, bit 1 origin has a port) | [origin block] | payload
  datagram: {
    byte: FrameType.datagram,
    size: (m, p) => {
      tagOk(m.tag);
      if (m.payload.length > MAX_DATAGRAM_PAYLOAD_BYTES) throw new TunnelError('bad-value', `datagram of ${m.payload.length} bytes exceeds ${MAX_DATAGRAM_PAYLOAD_BYTES}`);
      if (m.origin) p.origin = encodeOrigin(m.origin);
      return 5 + (p.origin ? originBytes(p.origin) : 0) + m.payload.length;
    },
    write: (w, m, p) => {
      w.u32(m.tag).u8(originFlags(p.origin));
      if (p.origin) writeOrigin(w, p.origin);
      w.bytes(m.payload);
    },
    read: (r) => {
      const tag = r.u32();
      if (tag === 0) throw malformed('connectee tag 0 is reserved');
      const flags = r.u8();
      if ((flags & ~(FLAG_ORIGIN | FLAG_ORIGIN_PORT)) !== 0 || flags === FLAG_ORIGIN_PORT) throw malformed(`datagram flags ${flags} has undefined bits`);
      const origin = flags & FLAG_ORIGIN ? readOrigin(r, (flags & FLAG_ORIGIN_PORT) !== 0) : undefined;
      if (r.remaining > MAX_DATAGRAM_PAYLOAD_BYTES) throw malformed(`datagram of ${r.remaining} bytes exceeds ${MAX_DATAGRAM_PAYLOAD_BYTES}`);
      return { type: 'datagram', tag, origin, payload: r.rest() };
    },
  },
  'datagram-close': {
    byte: FrameType.datagramClose,
    size: (m) => {
      tagOk(m.tag);
      return 4;
    },
    write: (w, m) => void w.u32(m.tag),
    read: (r) => {
      const tag = r.u32();
      if (tag === 0) throw malformed('connectee tag 0 is reserved');
      return { type: 'datagram-close', tag };
    },
  },
  ping: {
    byte: FrameType.ping,
    size: (m) => {
      u32(m.counter, 'ping counter');
      return 4;
    },
    write: (w, m) => void w.u32(m.counter),
    read: (r) => ({ type: 'ping', counter: r.u32() }),
  },
  pong: {
    byte: FrameType.pong,
    size: (m) => {
      u32(m.counter, 'pong counter');
      return 4;
    },
    write: (w, m) => void w.u32(m.counter),
    read: (r) => ({ type: 'pong', counter: r.u32() }),
  },  ...PEER_CODECS,
  ...POOL_CODECS,
};

const BY_BYTE: (BodyCodec<ControlMessageType> | undefined)[] = [];
const NAME_BY_BYTE: (ControlMessageType | undefined)[] = [];
for (const [name, c] of Object.entries(CODECS) as [ControlMessageType, BodyCodec<ControlMessageType>][]) {
  BY_BYTE[c.byte] = c;
  NAME_BY_BYTE[c.byte] = name;
}

/** The type byte of a message type. */
export function frameTypeByte(type: ControlMessageType): number {
  return CODECS[type].byte;
}

/** The message type of a type byte, or undefined when this version does not define it. */
export function frameTypeName(byte: number): ControlMessageType | undefined {
  return NAME_BY_BYTE[byte];
}

/**
 * Encodes one message as a whole frame in a new Buffer of exactly its length. Throws TunnelError
 * ('bad-value', 'bad-name') for a message that cannot be represented; that is a caller bug.
 */
export function encodeControlMessage(m: ControlMessage): Buffer {
  const codec = CODECS[m.type] as BodyCodec<ControlMessageType> | undefined;
  if (!codec) throw new TunnelError('bad-value', `unknown message type "${String((m as { type: unknown }).type)}"`);
  const prep: Prep = {};
  const body = codec.size(m, prep);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body);
  const w = new WireWriter(frame).u32(1 + body).u8(codec.byte);
  codec.write(w, m, prep);
  if (w.position !== frame.length) throw new TunnelError('bad-value', `internal: ${m.type} wrote ${w.position} of ${frame.length} bytes`);
  return frame;
}

/**
 * The 9-byte frame header of a STREAM_DATA frame carrying `dataBytes` bytes, so the data need not
 * be copied into a frame of its own (the control channel writes header and data as two pieces).
 */
export function encodeStreamDataHeader(id: number, dataBytes: number): Buffer {
  streamId(id);
  if (!Number.isInteger(dataBytes) || dataBytes < 1 || dataBytes > MAX_STREAM_DATA_BYTES) {
    throw new TunnelError('bad-value', `stream data of ${dataBytes} bytes is not in 1-${MAX_STREAM_DATA_BYTES}`);
  }
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  h.writeUInt32BE(5 + dataBytes, 0);
  h[4] = FrameType.streamData;
  h.writeUInt32BE(id, 5);
  return h;
}

export type ControlDecoded =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'ok'; readonly message: ControlMessage; readonly length: number };

export interface ControlDecodeOptions {
  /** Largest length field accepted (type + body). Use PRE_AUTH_MAX_FRAME_BYTES until authenticated. Default MAX_FRAME_BYTES. */
  readonly maxFrameBytes?: number;
}

/**
 * Decodes the frame at the start of `buf`; more frames may follow. An over-long length field is
 * refused as soon as its 4 bytes are in, before the body is buffered. Buffers in the message are
 * views into `buf`.
 */
export function decodeControlFrame(buf: Buffer, opts: ControlDecodeOptions = {}): ControlDecoded {
  if (buf.length < 4) return { kind: 'need-more' };
  const max = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
  const length = buf.readUInt32BE(0);
  if (length > max) throw new TunnelError('frame-too-large', `frame of ${length} bytes exceeds ${max}`);
  if (length === 0) throw malformed('frame length 0 has no type byte');
  if (buf.length < 4 + length) return { kind: 'need-more' };
  return { kind: 'ok', message: decodeFrameBody(buf, 4, 4 + length), length: 4 + length };
}

/** Decodes the type byte and body in `buf[start, end)` (a frame without its length field). */
export function decodeFrameBody(buf: Buffer, start: number, end: number): ControlMessage {
  const byte = buf[start]!;
  const codec = BY_BYTE[byte];
  if (!codec) throw new TunnelError('unknown-type', `frame type 0x${byte.toString(16).padStart(2, '0')} is not defined`);
  const r = new WireReader(buf, start + 1, end, `frame 0x${byte.toString(16)}`);
  const m = codec.read(r);
  r.done();
  return m;
}

import type { Endpoint } from '../../core/address.js';
import { MAX_WINDOW_BYTES } from './constants.js';
import { REFUSAL_CODES, type ControlMessage, type ControlMessageType, type RefusalCode } from './control-messages.js';
import { TunnelError } from './errors.js';
import type { encodeOrigin } from './origin-block.js';
import { checkUint, encodeEndpoint, encodeReason, endpointBytes, malformed, type WireReader, type WireWriter } from './wire.js';

/** The pieces every message's body codec is built from (control-codec.ts assembles them). */

export type Msg<T extends ControlMessageType> = Extract<ControlMessage, { type: T }>;

export interface BodyCodec<T extends ControlMessageType> {
  readonly byte: number;
  /** Exact body size; validates the message (throws TunnelError 'bad-value' / 'bad-name'). */
  size(m: Msg<T>, prep: Prep): number;
  write(w: WireWriter, m: Msg<T>, prep: Prep): void;
  read(r: WireReader): Msg<T>;
}

/** Values converted once by `size` and reused by `write` (endpoints, UTF-8 reasons). */
export interface Prep {
  e1?: ReturnType<typeof encodeEndpoint>;
  e2?: ReturnType<typeof encodeEndpoint>;
  text?: Buffer;
  origin?: ReturnType<typeof encodeOrigin>;
}

export const enumByte = <T extends string>(list: readonly T[], v: T, what: string): number => {
  const i = list.indexOf(v);
  if (i < 0) throw new TunnelError('bad-value', `${what} "${String(v)}" is not defined`);
  return i + 1;
};
export const enumRead = <T extends string>(list: readonly T[], b: number, what: string): T => {
  const v = list[b - 1];
  if (v === undefined) throw malformed(`${what} ${b} is not defined`);
  return v;
};
export const u32 = (v: number, what: string) => checkUint(v, 0xffff_ffff, what);
export const u16 = (v: number, what: string) => checkUint(v, 0xffff, what);
export const streamId = (v: number) => {
  u32(v, 'stream id');
  if (v === 0) throw new TunnelError('bad-value', 'stream id 0 is reserved');
};
export const readStreamId = (r: WireReader) => {
  const id = r.u32();
  if (id === 0) throw malformed('stream id 0 is reserved');
  return id;
};
export const tagOk = (v: number) => {
  u32(v, 'connectee tag');
  if (v === 0) throw new TunnelError('bad-value', 'connectee tag 0 is reserved');
};
export const window = (v: number, what: string) => {
  if (!Number.isInteger(v) || v < 1 || v > MAX_WINDOW_BYTES) throw new TunnelError('bad-value', `${what} ${v} is not in 1-${MAX_WINDOW_BYTES}`);
};
export const readWindow = (r: WireReader, what: string) => {
  const v = r.u32();
  if (v < 1 || v > MAX_WINDOW_BYTES) throw malformed(`${what} ${v} is not in 1-${MAX_WINDOW_BYTES}`);
  return v;
};
/** Checks a fixed-size field and returns its size. */
export const fixed = (b: Buffer, n: number, what: string): number => {
  if (b.length !== n) throw new TunnelError('bad-value', `${what} must be ${n} bytes, got ${b.length}`);
  return n;
};
/** Checks a variable-size field and returns its size. */
export const sized = (b: Buffer, min: number, max: number, what: string): number => {
  if (b.length < min || b.length > max) throw new TunnelError('bad-value', `${what} of ${b.length} bytes is not in ${min}-${max}`);
  return b.length;
};
export const refusalByte = (code: RefusalCode) => enumByte(REFUSAL_CODES, code, 'refusal code');
export const reasonPrep = (p: Prep, text: string) => (p.text = encodeReason(text)).length + 2;
export const ep1 = (p: Prep, e: Endpoint, what: string) => endpointBytes((p.e1 = encodeEndpoint(e, what)));
export const ep2 = (p: Prep, e: Endpoint, what: string) => endpointBytes((p.e2 = encodeEndpoint(e, what)));


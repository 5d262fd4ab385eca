import { defaultAead, type Aead } from './aead.js';
import {
  AEAD_KEY_BYTES, AEAD_TAG_BYTES, DATAGRAM_HEADER_BYTES, DatagramType, FLAG_ORIGIN, FLAG_ORIGIN_PORT, MAX_ORIGIN_BYTES,
  MAX_DATAGRAM_PAYLOAD_BYTES, MAX_SEQUENCE,
} from './constants.js';
import type { DatagramOrigin } from './control-messages.js';
import { writeDatagramHeader } from './datagram-header.js';
import { newNonceBuffer, setNonceSequence } from './datagram-nonce.js';
import { TunnelError } from './errors.js';
import type { Direction } from './key-schedule.js';
import { encodeOrigin, originBytes, writeOrigin } from './origin-block.js';
import { WireWriter, checkUint } from './wire.js';

export interface SealerOptions {
  /** 32-byte send key from `exportDatagramKeys(...).send`; copied. */
  readonly key: Uint8Array;
  readonly direction: Direction;
  /** The key id the receiver chose (its HELLO or AUTH_OK), written in every header. */
  readonly peerKeyId: number;
  /** Default: the fastest available (aead.ts). */
  readonly aead?: Aead;
}

/**
 * Encodes an origin block once per connectee, so sealing does not parse an address per datagram.
 * Throws TunnelError('bad-value') for a service id or endpoint that cannot be represented.
 */
export function encodeOriginBlock(origin: DatagramOrigin): Buffer {
  const o = encodeOrigin(origin);
  const out = Buffer.allocUnsafe(originBytes(o));
  writeOrigin(new WireWriter(out), o);
  return out;
}

/** The checks of `DatagramSealer.sealData` on its arguments: throws TunnelError('bad-value'). */
export function checkDataArguments(tag: number, payload: Uint8Array, originBlock: Buffer | undefined): void {
  if (tag >>> 0 !== tag || tag === 0) throw new TunnelError('bad-value', `connectee tag ${tag} is not in 1-4294967295`);
  // A range service's origin block is 2 bytes longer; the sealed datagram stays within one UDP payload.
  const max = originBlock && originBlock.length > MAX_ORIGIN_BYTES ? MAX_DATAGRAM_PAYLOAD_BYTES - 2 : MAX_DATAGRAM_PAYLOAD_BYTES;
  if (payload.length > max) {
    throw new TunnelError('bad-value', `datagram of ${payload.length} bytes exceeds ${max}`);
  }
  if (originBlock && originBlockFlags(originBlock) === 0) {
    throw new TunnelError('bad-value', `origin block of ${originBlock.length} bytes; use encodeOriginBlock`);
  }
}

/** The header flags of a datagram carrying `originBlock` (from `encodeOriginBlock`; its length says which): 0 for none. */
export function originBlockFlags(originBlock: Buffer | undefined): number {
  if (originBlock === undefined) return 0;
  const n = originBlock.length;
  if (n === 9 || n === 21) return FLAG_ORIGIN;
  if (n === 11 || n === 23) return FLAG_ORIGIN | FLAG_ORIGIN_PORT;
  return 0;
}

/**
 * Seals datagrams for one direction of one tunnel session with ChaCha20-Poly1305. Holds the
 * sequence counter, so exactly one sealer may exist per (key, direction): two would reuse nonces.
 * Every method is synchronous and returns a new Buffer, which the socket may keep until its send
 * completes; the header, nonce and counter scratch buffers are reused between calls.
 */
export class DatagramSealer {
  readonly #key: Buffer;
  readonly #peerKeyId: number;
  readonly #nonce: Buffer;
  readonly #header = Buffer.alloc(DATAGRAM_HEADER_BYTES);
  readonly #counter = Buffer.alloc(4);
  readonly #aead: Aead;
  #sequence = 0;

  constructor(opts: SealerOptions) {
    if (opts.key.length !== AEAD_KEY_BYTES) throw new TunnelError('bad-key', `datagram key must be ${AEAD_KEY_BYTES} bytes, got ${opts.key.length}`);
    checkUint(opts.peerKeyId, 0xffff_ffff, 'peer key id');
    this.#key = Buffer.from(opts.key);
    this.#peerKeyId = opts.peerKeyId;
    this.#nonce = newNonceBuffer(opts.direction);
    this.#aead = opts.aead ?? defaultAead;
  }

  /** The sequence number the next sealed datagram will carry. */
  get nextSequence(): number {
    return this.#sequence;
  }

  /**
   * A data datagram for connectee `tag` (1 to 2^32-1). `originBlock` (from `encodeOriginBlock`) is
   * sent by the gateway until the agent has answered on this tag. Throws TunnelError('bad-value')
   * for a bad tag or a payload over MAX_DATAGRAM_PAYLOAD_BYTES, 'sequence-exhausted' after 2^48.
   */
  sealData(tag: number, payload: Uint8Array, originBlock?: Buffer): Buffer {
    checkDataArguments(tag, payload, originBlock);
    return this.#seal(DatagramType.data, originBlockFlags(originBlock), tag, originBlock, payload);
  }

  /** An authenticated keepalive (agent to gateway): proves the key holder; `counter` is echoed in the ack. */
  sealKeepalive(counter: number): Buffer {
    return this.#sealCounter(DatagramType.keepalive, counter);
  }

  /** The answer to an opened keepalive, the same size as it (amplification factor 1). */
  sealKeepaliveAck(counter: number): Buffer {
    return this.#sealCounter(DatagramType.keepaliveAck, counter);
  }

  #sealCounter(typeByte: number, counter: number): Buffer {
    checkUint(counter, 0xffff_ffff, 'keepalive counter');
    this.#counter.writeUInt32BE(counter, 0);
    return this.#seal(typeByte, 0, 0, undefined, this.#counter);
  }

  /**
   * Writes the header of the next data datagram for `tag` into `out` at `at` and returns its
   * sequence, for a caller that seals the rest elsewhere (the native batch, with this sealer's key
   * and direction): the sequence is taken from this sealer, so the two never reuse a nonce. The
   * caller has checked `tag`, the payload size and `originBlock` as `sealData` does. Throws
   * TunnelError('sequence-exhausted') after 2^48.
   */
  writeDataHeader(out: Buffer, at: number, tag: number, originBlock: Buffer | undefined): number {
    const seq = this.#takeSequence();
    writeDatagramHeader(this.#header, DatagramType.data, originBlockFlags(originBlock), this.#peerKeyId, tag, seq);
    this.#header.copy(out, at);
    return seq;
  }

  #takeSequence(): number {
    const seq = this.#sequence;
    if (seq > MAX_SEQUENCE) throw new TunnelError('sequence-exhausted', 'datagram sequence space used up; reconnect for new keys');
    this.#sequence = seq + 1;
    return seq;
  }

  #seal(typeByte: number, flags: number, tag: number, prefix: Buffer | undefined, body: Uint8Array): Buffer {
    const seq = this.#takeSequence();
    writeDatagramHeader(this.#header, typeByte, flags, this.#peerKeyId, tag, seq);
    setNonceSequence(this.#nonce, seq);
    const plainBytes = (prefix ? prefix.length : 0) + body.length;
    const out = Buffer.allocUnsafe(DATAGRAM_HEADER_BYTES + plainBytes + AEAD_TAG_BYTES);
    this.#header.copy(out, 0);
    let off = DATAGRAM_HEADER_BYTES;
    if (prefix) off += prefix.copy(out, off);
    out.set(body, off);
    this.#aead.sealInPlace(out, DATAGRAM_HEADER_BYTES, plainBytes, this.#header, this.#nonce, this.#key);
    return out;
  }
}

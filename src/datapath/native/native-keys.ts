import {
  DATAGRAM_HEADER_BYTES, DATAGRAM_OVERHEAD_BYTES, DEFAULT_REPLAY_WINDOW, MAX_AUTH_FAILURES_PER_KEY,
  MAX_SEQUENCE, TunnelError, checkDataArguments, openedDatagram, readUnverifiedHeader, rejectedDatagram,
  type DatagramRejectReason, type OpenResult, type OpenerOptions, type SealerOptions,
} from '../../protocol/tunnel/index.js';
import { NONCE_DIRECTION } from '../../protocol/tunnel/datagram-nonce.js';
import { SocketOpener, SocketSealer, type SocketRef } from '../socket-keys.js';
import type { EngineHandle, NativeBinding } from './binding.js';
import type { NativeDatapath } from './native-datapath.js';
import { NativeListener } from './native-sockets.js';

/** The key-slot functions of the addon (native/src/seal.cc). */
export interface SealBinding {
  sealAttach(engine: EngineHandle, openm: Int32Array, drops: Int32Array): void;
  /** keyId 0: a sealing slot; else an opening one with its window. -1 once the engine is gone. */
  keyAdd(engine: EngineHandle, key: Buffer, direction: number, keyId: number, window: number, maxAuthFailures: number, pinSource: boolean, dropInBatch: boolean): number;
  keyRelease(engine: EngineHandle, slot: number): void;
  /** verdict | newest << 8, 0 when the header is not this key's (or not a tunnel header). */
  openOne(engine: EngineHandle, slot: number, buf: Buffer, record: number): number;
  keyState(engine: EngineHandle, slot: number): [highest: number, authFailures: number];
}

/** The forwarding table of the addon (native/src/forward.cc); absent in older builds. */
export interface ForwardBinding {
  /** `gens`: per entry, bumped by the engine whenever it removes the entry; true when this addon took them (older ones ignore the argument). */
  forwardAttach(engine: EngineHandle, counters: Float64Array, credits: Int32Array, seqs: Float64Array, gens?: Int32Array): boolean | undefined;
  /** src/dst: [port, family (0: connected / any), address x4]. An entry id, or -1 when it cannot be installed. */
  forwardSeal(engine: EngineHandle, inSock: number, src: readonly number[], outSock: number, dst: readonly number[], sealSlot: number, peerKeyId: number, tag: number, maxLen: number): number;
  forwardPlain(engine: EngineHandle, openSlot: number, tag: number, src: readonly number[], outSock: number, dst: readonly number[], maxLen: number): number;
  /** The plain entry forwards at most `ratio` x the bytes the seal entry received, plus its allowance (counters[3]). */
  forwardPair(engine: EngineHandle, sealEntry: number, plainEntry: number, ratio: number): void;
  forwardRemove(engine: EngineHandle, entry: number): void;
  forwardLive(engine: EngineHandle, entry: number): boolean;
  /** The seal entry sends `byte` before each datagram (ICE's data prefix on a direct peer path); absent in older builds. */
  forwardFrame?(engine: EngineHandle, sealEntry: number, byte: number): boolean;
  /** Opened under `openSlot` with `tagIn` (from `src`), sealed again under `sealSlot` for `tagOut` to `dst`; absent in older builds. */
  forwardReseal?(engine: EngineHandle, openSlot: number, tagIn: number, src: readonly number[], outSock: number, dst: readonly number[], sealSlot: number, peerKeyId: number, tagOut: number, maxLen: number): number;
  /** A udpexposer entry (datapath/tag-offload.ts); absent in older builds. */
  forwardTagged?(engine: EngineHandle, kind: 1 | 2, inSock: number, src: readonly number[], outSock: number, dst: readonly number[], tag: number, minLen: number, maxLen: number, guard: number): number;
  forwardTagPair?(engine: EngineHandle, taggedEntry: number, untaggedEntry: number, ratio: number): boolean;
}

/** Doubles per forwarding entry in `counters`: [datagrams, bytes, send errors, unused]. */
export const FORWARD_COUNTERS = 4;
/** Forwarding entries per engine (two per offloaded session and side). */
export const FORWARD_ENTRIES = 1 << 15;

/** int32 per receive slot in `openm`: [key slot or -1, verdict, newest]. */
const OPEN_RECORD = 3;
const VERDICT_OK = 1;
/** Key slots with drop counters in `drops`: [0] all drops, then per slot too-old, replayed, auth-failed. */
const DROP_SLOTS = 4096;
const DROP_REASONS = ['too-old', 'replayed', 'auth-failed'] as const;
const REASONS: readonly (DatagramRejectReason | undefined)[] = [undefined, undefined, 'too-old', 'replayed', 'auth-failed', 'bad-plaintext', 'key-exhausted'];

export interface Engine {
  readonly b: SealBinding;
  readonly handle: EngineHandle;
  readonly openm: Int32Array;
  readonly drops: Int32Array;
  /** The next sequence of each sealing slot below DROP_SLOTS, shared with the batch's forwarding. */
  readonly seqs: Float64Array;
  /** The forwarding table, when this addon has one. */
  readonly fwd: {
    readonly b: ForwardBinding;
    readonly counters: Float64Array;
    readonly credits: Int32Array;
    /** Each entry's generation (ForwardBinding.forwardAttach), or null with an addon without them. */
    readonly gens: Int32Array | null;
  } | null;
  /** Openers whose drops are counted in the harvest. */
  readonly folding: Set<NativeSocketOpener>;
  foldedTotal: number;
}

/** After each batch: hands the harvest's drops to their openers' owners, once per opener. */
function fold(e: Engine): void {
  if (e.drops[0] === e.foldedTotal) return;
  e.foldedTotal = e.drops[0]!;
  for (const o of e.folding) o.fold();
}

const engines = new WeakMap<NativeDatapath, Engine | null>();

/** The engine's key-slot side, attached on first use; null when this addon has none (an older build) or it is destroyed. */
function engineOf(dp: NativeDatapath): Engine | null {
  let e = engines.get(dp);
  if (e !== undefined) return e;
  const en = dp.engine;
  const b = en?.binding as (NativeBinding & Partial<SealBinding>) | undefined;
  e = null;
  if (en && b && typeof b.keyAdd === 'function' && typeof b.sealAttach === 'function') {
    const openm = new Int32Array(en.rxSlots * OPEN_RECORD).fill(-1);
    const drops = new Int32Array(1 + DROP_SLOTS * DROP_REASONS.length);
    b.sealAttach(en.handle, openm, drops);
    const seqs = new Float64Array(DROP_SLOTS);
    const fb = b as NativeBinding & Partial<ForwardBinding>;
    let fwd: Engine['fwd'] = null;
    if (typeof fb.forwardAttach === 'function') {
      const counters = new Float64Array(FORWARD_ENTRIES * FORWARD_COUNTERS);
      const credits = new Int32Array(FORWARD_ENTRIES);
      const gens = new Int32Array(FORWARD_ENTRIES);
      const tookGens = fb.forwardAttach(en.handle, counters, credits, seqs, gens) === true;
      fwd = { b: fb as ForwardBinding, counters, credits, gens: tookGens ? gens : null };
    }
    const engine: Engine = { b: b as SealBinding, handle: en.handle, openm, drops, seqs, fwd, folding: new Set(), foldedTotal: 0 };
    dp.afterBatch = () => fold(engine);
    e = engine;
  }
  engines.set(dp, e);
  return e;
}

/** True when `dp`'s addon seals and opens in the batch. */
export function sealsInBatch(dp: NativeDatapath): boolean {
  return engineOf(dp) !== null;
}

/**
 * A sealer whose data datagrams are sealed in the native batch: `sendData` writes the header (with
 * the next sequence of this sealer's counter) and the plaintext straight into the staging memory,
 * and the flush seals the whole batch in C++ (OpenSSL's ChaCha20-Poly1305) before sendmmsg, so
 * runs to one agent leave as GSO sends. Keepalives and `sealData` stay in JavaScript with the same
 * key and counter: the bytes are the same either way.
 */
export class NativeSocketSealer extends SocketSealer {
  readonly #dp: NativeDatapath;
  readonly #e: Engine;
  readonly #header = Buffer.alloc(DATAGRAM_HEADER_BYTES);
  #slot: number;

  constructor(dp: NativeDatapath, e: Engine, opts: SealerOptions, socket: SocketRef) {
    super(opts, socket);
    this.#dp = dp;
    this.#e = e;
    this.#slot = e.b.keyAdd(e.handle, Buffer.from(opts.key), NONCE_DIRECTION[opts.direction], 0, 0, 0, false, false);
    this.peerKeyId = opts.peerKeyId;
    this.#shared = this.#slot >= 0 && this.#slot < e.seqs.length;
    if (this.#shared) e.seqs[this.#slot] = 0;
  }

  /** The receiver's key id that data datagrams of this sealer carry. */
  readonly peerKeyId: number;
  /** The sequence counter lives in `seqs[slot]`, shared with the batch's forwarding (forward.cc). */
  #shared: boolean;

  /** The addon's key slot, -1 once released. */
  get slot(): number {
    return this.#slot;
  }

  /** The datapath whose batch seals under this slot. */
  get datapath(): NativeDatapath {
    return this.#dp;
  }

  /** The engine's key and forwarding state. */
  get engine(): Engine {
    return this.#e;
  }

  override get nextSequence(): number {
    return this.#shared ? this.#e.seqs[this.#slot]! : super.nextSequence;
  }

  protected override takeSequence(): number {
    if (!this.#shared) return super.takeSequence();
    const seq = this.#e.seqs[this.#slot]!;
    if (seq > MAX_SEQUENCE) throw new TunnelError('sequence-exhausted', 'datagram sequence space used up; reconnect for new keys');
    this.#e.seqs[this.#slot] = seq + 1;
    return seq;
  }

  override sendData(tag: number, payload: Uint8Array, originBlock: Buffer | undefined, port: number, address: string): void {
    const s = this.socket();
    if (this.#slot < 0 || !(s instanceof NativeListener) || s.datapath !== this.#dp) return super.sendData(tag, payload, originBlock, port, address);
    checkDataArguments(tag, payload, originBlock);
    const olen = originBlock === undefined ? 0 : originBlock.length;
    // The sequence is taken (and may throw) before anything is staged: a staged record is always
    // written whole, never sealed over stale bytes.
    this.writeDataHeader(this.#header, 0, tag, originBlock);
    const at = s.stageSealed(DATAGRAM_OVERHEAD_BYTES + olen + payload.length, this.#slot, port, address);
    if (at < 0) return;
    const out = this.#dp.staging;
    this.#header.copy(out, at);
    if (originBlock !== undefined) originBlock.copy(out, at + DATAGRAM_HEADER_BYTES);
    out.set(payload, at + DATAGRAM_HEADER_BYTES + olen);
  }

  /** Sends what is staged under this key first, then frees the slot. Idempotent. */
  override release(): void {
    if (this.#slot < 0) return;
    this.#dp.flush();
    // The counter moves back here: a released sealer that still seals (a keepalive) never reuses a sequence.
    if (this.#shared) super.nextSequenceFrom(this.#e.seqs[this.#slot]!);
    this.#shared = false;
    this.#e.b.keyRelease(this.#e.handle, this.#slot);
    this.#slot = -1;
  }
}

/** Receives datagrams the batch dropped under one key: `count` more for `reason`. */
export type DropCounter = (reason: DatagramRejectReason, count: number) => void;

/** How a native opener runs (tunnel-keys.ts `tunnelOpener`). */
export interface OpenerHow {
  /** Once bound, the batch opens this key's datagrams only from the source it was bound from. */
  readonly pinSource?: boolean;
  /**
   * The owner's counter of rejected datagrams. Given, too-old, replayed and forged datagrams of
   * this key are dropped in the harvest without reaching JavaScript, and counted here once per
   * batch; without it, every datagram reaches `open`, which returns the reason.
   */
  readonly onDropped?: DropCounter;
}

/**
 * An opener whose key and replay window live in the native engine. Datagrams of the socket the key
 * is bound to are opened in place as the batch is harvested (their verdict is in `openm`); the
 * first one (which binds the key to its socket) and any that reach it another way are opened by one
 * call each. Results are those of DatagramOpener, reasons included; payloads are views of the
 * receive slot (valid during the call, as every receive buffer of the native datapath).
 */
export class NativeSocketOpener extends SocketOpener {
  readonly #dp: NativeDatapath;
  readonly #e: Engine;
  readonly #keyId: number;
  readonly #onDropped: DropCounter | undefined;
  readonly #folded = [0, 0, 0];
  #slot: number;
  #released = false;

  constructor(dp: NativeDatapath, e: Engine, opts: OpenerOptions, how: OpenerHow = {}) {
    super(opts);
    this.#dp = dp;
    this.#e = e;
    this.#keyId = opts.keyId;
    this.#onDropped = how.onDropped;
    // Key id 0 means a sealing slot to the addon; no receiver picks it, but such an opener stays in JavaScript.
    this.#slot = opts.keyId === 0 ? -1 : e.b.keyAdd(e.handle, Buffer.from(opts.key), NONCE_DIRECTION[opts.direction], opts.keyId, opts.replayWindow ?? DEFAULT_REPLAY_WINDOW, MAX_AUTH_FAILURES_PER_KEY, how.pinSource ?? false, this.#onDropped !== undefined);
    if (this.#onDropped !== undefined && this.#slot >= 0) e.folding.add(this);
  }

  /** The addon's key slot, -1 when none (released, or key id 0). */
  get slot(): number {
    return this.#slot;
  }

  /** The datapath whose batch opens under this slot. */
  get datapath(): NativeDatapath {
    return this.#dp;
  }

  override get authFailures(): number {
    return this.#slot < 0 ? super.authFailures : this.#e.b.keyState(this.#e.handle, this.#slot)[1];
  }

  override get highestSequence(): number {
    return this.#slot < 0 ? super.highestSequence : this.#e.b.keyState(this.#e.handle, this.#slot)[0];
  }

  override open(buf: Buffer): OpenResult {
    if (this.#released) return rejectedDatagram('unknown-key');
    if (this.#slot < 0) return super.open(buf);
    const h = readUnverifiedHeader(buf);
    if (h === undefined) return rejectedDatagram('malformed');
    if (h.keyId !== this.#keyId) return rejectedDatagram('unknown-key');
    const i = this.#dp.deliveringSlot(buf);
    const m = this.#e.openm;
    let v: number;
    if (i >= 0 && m[i * OPEN_RECORD]! >= 0) {
      // Opened in the batch, under this key or (same key id, another slot) not.
      if (m[i * OPEN_RECORD] !== this.#slot) return rejectedDatagram('unknown-key');
      v = m[i * OPEN_RECORD + 1]! | (m[i * OPEN_RECORD + 2]! << 8);
    } else {
      v = this.#e.b.openOne(this.#e.handle, this.#slot, buf, i);
    }
    if (v === 0) return rejectedDatagram('unknown-key');
    const verdict = v & 0xff;
    if (verdict !== VERDICT_OK) return rejectedDatagram(REASONS[verdict] ?? 'auth-failed');
    const d = openedDatagram(h, buf.subarray(DATAGRAM_HEADER_BYTES, buf.length - (DATAGRAM_OVERHEAD_BYTES - DATAGRAM_HEADER_BYTES)), (v & 0x100) !== 0);
    return d === undefined ? rejectedDatagram('bad-plaintext') : { ok: true, datagram: d };
  }

  /** Hands the drops the harvest counted under this key since the last call to the owner. */
  fold(): void {
    const at = 1 + this.#slot * DROP_REASONS.length;
    if (this.#onDropped === undefined || this.#slot < 0 || this.#slot >= DROP_SLOTS) return;
    for (let r = 0; r < DROP_REASONS.length; r++) {
      const n = this.#e.drops[at + r]! - this.#folded[r]!;
      if (n === 0) continue;
      this.#folded[r] += n;
      this.#onDropped(DROP_REASONS[r]!, n);
    }
  }

  /** Frees the slot (and its window); the opener refuses everything afterwards. Idempotent. */
  override release(): void {
    if (this.#released) return;
    this.fold();
    this.#e.folding.delete(this);
    this.#released = true;
    if (this.#slot >= 0) this.#e.b.keyRelease(this.#e.handle, this.#slot);
    this.#slot = -1;
  }
}

/** A native sealer or opener for `dp`, or null when its addon has no key slots. */
export function nativeKeys(dp: NativeDatapath): Engine | null {
  return engineOf(dp);
}

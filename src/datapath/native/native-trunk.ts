import type { PairCounters, PairEnd, SealedKeys, StreamConn } from '../stream-datapath.js';
import type { StreamTrunk, TrunkStats } from '../stream-trunk.js';
import { NativeConn, NO_COUNTERS } from './native-conn.js';
import type { NativeStreamBinding, StreamEngineHandle } from './stream-binding.js';

/** What a trunk asks of its engine's datapath (native-stream-datapath.ts). */
export interface TrunkEngine {
  readonly binding: NativeStreamBinding;
  readonly engine: StreamEngineHandle;
  /** The connection leaves the datapath's table (its end record, if any, is ignored). */
  forget(id: number): void;
  /** `id`'s trunk end record goes to `onEnd` (once). */
  onTrunkEnd(id: number, onEnd: (code: string) => void): void;
  /** `id`'s READY records (a stream id each) go to `onReady`. */
  onTrunkReady(id: number, onReady: (sid: number) => void): void;
}

/** The keys as the engine takes them: seal key | seal iv | open key | open iv (copied there at once). */
export function packKeys(keys: SealedKeys, into: Buffer): Buffer {
  if (keys.sealKey.length !== 16 || keys.sealIv.length !== 12 || keys.openKey.length !== 16 || keys.openIv.length !== 12) {
    throw new TypeError('sealed keys: a 16-byte key and a 12-byte IV per direction');
  }
  keys.sealKey.copy(into, 0);
  keys.sealIv.copy(into, 16);
  keys.openKey.copy(into, 28);
  keys.openIv.copy(into, 44);
  return into;
}

/** One trunk in the native stream engine (native/src/stream-trunk.h); see StreamTrunk. */
export class NativeTrunk implements StreamTrunk {
  #dead = false;
  /** Expected streams whose READY is awaited. */
  readonly #waiting = new Map<number, (alive: boolean) => void>();

  constructor(
    private readonly e: TrunkEngine,
    private readonly conn: NativeConn,
    onEnd: (code: string) => void,
  ) {
    e.onTrunkEnd(conn.id, (code) => {
      this.#dead = true;
      this.#release();
      onEnd(code);
    });
    e.onTrunkReady(conn.id, (sid) => {
      const on = this.#waiting.get(sid);
      this.#waiting.delete(sid);
      on?.(true);
    });
  }

  /** The trunk is gone: every READY still awaited never comes. */
  #release(): void {
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const on of waiting) on(false);
  }

  get dead(): boolean {
    return this.#dead || this.conn.destroyed;
  }

  expect(sid: number, onReady?: (alive: boolean) => void): boolean {
    if (this.dead || this.e.binding.streamTrunkExpect!(this.e.engine, this.conn.id, sid) !== 0) return false;
    if (onReady) this.#waiting.set(sid, onReady);
    return true;
  }

  attach(sid: number, plain: StreamConn, idleTimeoutMs: number, expected: boolean, onEnd: (end: PairEnd) => void): (() => PairCounters) | undefined {
    if (this.dead || !(plain instanceof NativeConn) || plain.dp !== this.conn.dp || !plain.held || plain.destroyed) return undefined;
    if ((plain.unread?.length ?? 0) > 65536) return undefined;
    const r = this.e.binding.streamTrunkAttach!(this.e.engine, this.conn.id, sid, plain.id, Math.max(0, Math.floor(idleTimeoutMs)), expected, plain.unread);
    if (r !== 0) return undefined;
    this.#waiting.delete(sid);
    plain.unread = undefined;
    plain.attachedAsStream(onEnd);
    return () => {
      if (plain.destroyed) return plain.finalCounters;
      const c = this.e.binding.streamClose(this.e.engine, plain.id);
      plain.closedAsPair(c ? { bytesFromClient: c[0], bytesToClient: c[1] } : NO_COUNTERS);
      this.e.forget(plain.id);
      return plain.finalCounters;
    };
  }

  drop(sid: number): void {
    this.#waiting.delete(sid);
    if (!this.dead) this.e.binding.streamTrunkDrop!(this.e.engine, this.conn.id, sid);
  }

  stats(): TrunkStats | undefined {
    if (this.dead) return undefined;
    const [streams, received, queued, frames] = this.e.binding.streamTrunkStats!(this.e.engine, this.conn.id);
    return streams < 0 ? undefined : { streams, received, queued, frames: frames ?? 0 };
  }

  close(): void {
    this.#dead = true;
    this.conn.destroy();
    this.#release();
  }
}

import { canonicalIp, type Endpoint } from '../../core/address.js';
import { endpointAt } from './event-endpoint.js';
import { failedDial, type DialInFlight, type DialJoin, type PairCounters, type RecordCipherInfo, type RecordCipherName, type PairEnd, type SealedKeys, type StreamConn, type StreamDatapath, type StreamListener } from '../stream-datapath.js';
import { END_REASONS, EV_ACCEPT, EV_CONNECTED, EV_END, EV_END_KEPT, EV_READABLE, EV_RECORD, EV_TRUNK_END, EV_TRUNK_READY, SEALED_END_CODES, type NativeStreamBinding, type StreamEngineHandle } from './stream-binding.js';
import { endCode, systemError } from './system-error.js';
import { NativeConn, NO_COUNTERS, type ConnEngine } from './native-conn.js';
import { NativeTrunk, packKeys, type TrunkEngine } from './native-trunk.js';
import type { StreamTrunk } from '../stream-trunk.js';
import { NativeRelays, relayedBindingOf } from './native-relayed.js';
import type { RelayedConn, RelayedConnEvents } from '../relayed-conn.js';
import type { CongestionChoice } from '../congestion.js';

/** Event records per delivery; the engine delivers early when they fill. */
const EVENT_RECORDS = 512;

/** A dial the engine has not answered yet; its own handle for `cancel`. */
class PendingDial implements DialInFlight {
  constructor(
    readonly dp: NativeStreamDatapath,
    readonly id: number,
    readonly remote: Endpoint,
    readonly done: (err: Error | undefined, conn?: StreamConn) => void,
    /** The client the engine joins the upstream to at connect (streamDialJoin). */
    readonly joinTo: NativeConn | undefined,
  ) {}

  cancel(): void {
    this.dp.cancelDial(this);
  }
}

/**
 * The native stream datapath (docs/datapath.md, "The TCP stream datapath"). One engine owns every
 * listener and connection in a private epoll set; its events (accepted connections, finished
 * dials, readable held connections, ended pairs) arrive in one call per batch and are dispatched
 * here. A joined pair's bytes never reach JavaScript: the engine splices them through a pipe
 * per direction and reports one end event with the reason and the counters.
 */
export class NativeStreamDatapath implements StreamDatapath, ConnEngine {
  readonly kind = 'native' as const;
  readonly #b: NativeStreamBinding;
  readonly #engine: StreamEngineHandle;
  readonly #ev = new Float64Array(EVENT_RECORDS * EV_RECORD);
  /** By engine id: accepted and dialed connections this side still knows. */
  readonly #conns: (NativeConn | undefined)[] = [];
  readonly #listeners = new Map<number, (conn: StreamConn) => void>();
  #lastListener = -1;
  #lastOn: ((conn: StreamConn) => void) | undefined;
  /** By engine id: dials the engine has not answered. */
  readonly #dials: (PendingDial | undefined)[] = [];
  readonly #one = new Int32Array(1);
  #lastLocal: Endpoint | undefined;
  readonly #lastLocalAt = new Float64Array(6);
  readonly #counters = new Float64Array(2);
  /** The keys of the sealed pair being joined, as the engine takes them (copied there at once). */
  readonly #sealedKeys = Buffer.alloc(56);
  /** By trunk id: what its end record calls (native-trunk.ts). */
  readonly #trunkEnds = new Map<number, (code: string) => void>();
  readonly #trunkReady = new Map<number, (sid: number) => void>();

  /** `congestion`: the TCP congestion control of its listeners and dials (datapath/congestion.ts); absent = the kernel's. */
  constructor(binding: NativeStreamBinding, congestion?: CongestionChoice) {
    this.#b = binding;
    this.#engine = binding.streamOpen(this.#ev, (n) => this.#onEvents(n));
    if (congestion !== undefined && (congestion.local !== '' || congestion.all !== '')) binding.streamCongestion(this.#engine, congestion.local, congestion.all);
  }

  async listen(host: string, port: number, onConnection: (conn: StreamConn) => void): Promise<StreamListener> {
    const id = this.#b.streamListen(this.#engine, host, port, 4096);
    const [family, address, bound] = this.#b.streamLocal(this.#engine, id);
    this.#listeners.set(id, onConnection);
    if (this.#lastListener === id) this.#lastOn = undefined; // an id taken again: not the closed listener's handler
    let closed: Promise<void> | undefined;
    return {
      local: { address: family === 4 ? address : formatV6Text(address), port: bound, family },
      close: () =>
        (closed ??= Promise.resolve().then(() => {
          this.#listeners.delete(id);
          if (this.#lastListener === id) this.#lastOn = undefined;
          this.#b.streamClose(this.#engine, id);
        })),
    };
  }

  dial(remote: Endpoint, timeoutMs: number, done: (err: Error | undefined, conn?: StreamConn) => void, join?: DialJoin): DialInFlight {
    let id: number;
    // Joined at connect only while nothing would come between (client bytes read with a PROXY header go first: pipe does that).
    const down = join?.down;
    const joinTo = down instanceof NativeConn && down.dp === this && down.held && !down.destroyed && !down.unread && this.#b.streamDialJoin ? down : undefined;
    try {
      const t = Math.max(0, Math.floor(timeoutMs));
      id = joinTo
        ? this.#b.streamDialJoin!(this.#engine, remote.address, remote.port, t, joinTo.id, Math.max(0, Math.floor(join!.idleTimeoutMs)))
        : this.#b.streamDial(this.#engine, remote.address, remote.port, t);
    } catch (err) {
      return failedDial(err as Error, done);
    }
    const pending = new PendingDial(this, id, remote, done, joinTo);
    this.#dials[id] = pending;
    return pending;
  }

  cancelDial(d: PendingDial): void {
    if (this.#dials[d.id] !== d) return;
    this.#dials[d.id] = undefined;
    this.#b.streamClose(this.#engine, d.id);
  }

  pipe(down: StreamConn, up: StreamConn, idleTimeoutMs: number, onEnd: (end: PairEnd) => void): (() => PairCounters) | undefined {
    if (up instanceof NativeConn && down instanceof NativeConn && up.joinedTo === down && down.lateEnd) {
      // Joined at connect and already over: its first bytes moved at the join, and the end was
      // reported before the caller took note of the answer.
      const end = down.lateEnd;
      up.joinedTo = down.lateEnd = undefined;
      queueMicrotask(() => onEnd(end));
      return () => down.finalCounters;
    }
    if (!(down instanceof NativeConn) || !(up instanceof NativeConn) || down.dp !== this || up.dp !== this || !down.held || !up.held) return undefined;
    if (up.joinedTo === down) {
      up.joinedTo = down.joinedFrom = undefined; // the engine joined them at connect (dial with DialJoin)
    } else {
      // Client bytes read with a PROXY header go first; the pipe starts after them.
      if (down.unread && !up.writeFirst(down.unread)) return undefined;
      down.unread = undefined;
      try {
        this.#b.streamPipe(this.#engine, down.id, up.id, Math.max(0, Math.floor(idleTimeoutMs)));
      } catch {
        return undefined; // no pipe to be had (EMFILE): the caller relays them as sockets
      }
    }
    down.pairWith(up, onEnd);
    return this.#stopOf(down, up);
  }

  /** A joined pair's `stop`: closes both (no end event) and gives the counters at that moment. */
  #stopOf(down: NativeConn, up: NativeConn): () => PairCounters {
    return () => {
      if (down.destroyed) return down.finalCounters;
      const c = this.#b.streamClose(this.#engine, down.id);
      down.closedAsPair(c ? { bytesFromClient: c[0], bytesToClient: c[1] } : NO_COUNTERS);
      this.#forget(down.id);
      this.#forget(up.id);
      return down.finalCounters;
    };
  }

  pipeSealed(plain: StreamConn, sealed: StreamConn, keys: SealedKeys, idleTimeoutMs: number, onEnd: (end: PairEnd) => void, keep = false): (() => PairCounters) | undefined {
    if (!(plain instanceof NativeConn) || !(sealed instanceof NativeConn) || plain.dp !== this || sealed.dp !== this || !plain.held || !sealed.held) return undefined;
    // Bytes read before the join (after a PROXY header, after the hello) go first, in the engine.
    if ((plain.unread?.length ?? 0) > 65536) return undefined;
    if (!isSequence(keys.sealSeq) || !isSequence(keys.openSeq)) throw new RangeError(`sealed keys: sequence numbers must be integers >= 0 (${keys.sealSeq}, ${keys.openSeq})`);
    const k = packKeys(keys, this.#sealedKeys);
    try {
      this.#b.streamPipeSealed(this.#engine, plain.id, sealed.id, k, keys.sealSeq, keys.openSeq, Math.max(0, Math.floor(idleTimeoutMs)), plain.unread, sealed.unread, keep);
    } catch {
      return undefined; // not joined (no AES-GCM in this OpenSSL, epoll_ctl failed): the caller relays them as sockets
    } finally {
      k.fill(0);
    }
    plain.unread = sealed.unread = undefined;
    plain.pairWith(sealed, onEnd);
    return this.#stopOf(plain, sealed);
  }

  /**
   * Makes `sealed` (held, its hello done) a trunk (stream-trunk.ts); undefined when this engine
   * has none (an addon built before trunks) or the engine refused. `onEnd` hears its end once.
   */
  trunk(sealed: StreamConn, keys: SealedKeys, onEnd: (code: string) => void): StreamTrunk | undefined {
    if (!(sealed instanceof NativeConn) || sealed.dp !== this || !sealed.held || sealed.destroyed || !this.#b.streamTrunkStart) return undefined;
    if (!isSequence(keys.sealSeq) || !isSequence(keys.openSeq)) throw new RangeError(`sealed keys: sequence numbers must be integers >= 0 (${keys.sealSeq}, ${keys.openSeq})`);
    const k = packKeys(keys, this.#sealedKeys);
    try {
      this.#b.streamTrunkStart(this.#engine, sealed.id, k, keys.sealSeq, keys.openSeq, sealed.unread);
    } catch {
      return undefined;
    } finally {
      k.fill(0);
    }
    sealed.unread = undefined;
    sealed.held = false;
    const host: TrunkEngine = {
      binding: this.#b,
      engine: this.#engine,
      forget: (id) => this.#forget(id),
      onTrunkEnd: (id, on) => this.#trunkEnds.set(id, on),
      onTrunkReady: (id, on) => this.#trunkReady.set(id, on),
    };
    return new NativeTrunk(host, sealed, onEnd);
  }

  /** For tests: a sealer sends KEY_UPDATE after `maxRecords` records or `maxBytes` plaintext bytes under one key. */
  setSealedLimits(maxRecords: number, maxBytes: number): void {
    this.#b.streamSealedLimits(this.#engine, maxRecords, maxBytes);
  }

  /**
   * Wake-up moderation under bulk traffic (docs/datapath.md, "Wake-up moderation"): after a
   * wake-up that read less than `batch` bytes while the last 10 ms read at least `minRate`
   * bytes/s, the engine waits up to `boundUs` (0 turns it off). On by default; for tests.
   */
  setModeration(boundUs: number, minRate: number, batch: number): void {
    this.#b.streamModeration?.(this.#engine, boundUs, minRate, batch);
  }

  /** The moderation's counters (all 0 on an addon without it). */
  get moderationState(): { readonly waits: number; readonly engaged: boolean; readonly engages: number; readonly disengages: number; readonly rate: number; readonly readBytes: number } {
    const [waits, engaged, engages, disengages, rate, readBytes] = this.#b.streamModerationState?.(this.#engine) ?? [0, 0, 0, 0, 0, 0];
    return { waits, engaged: engaged === 1, engages, disengages, rate, readBytes };
  }

  recordCipher(use?: RecordCipherName): RecordCipherInfo {
    return this.#b.streamRecordCipher?.(this.#engine, use) ?? { cipher: 'openssl', arch: '', missing: 'addon without streamRecordCipher' };
  }

  /** Relayed connections (native-relayed.ts); made at the first, when the addon has them. */
  #relays: NativeRelays | null | undefined;

  relayed(conn: StreamConn, idleTimeoutMs: number, events: RelayedConnEvents): RelayedConn | undefined {
    if (!(conn instanceof NativeConn) || conn.dp !== this) return undefined;
    if (this.#relays === undefined) {
      const b = relayedBindingOf(this.#b);
      this.#relays = b ? new NativeRelays(b, this.#engine) : null;
    }
    return this.#relays?.start(conn, idleTimeoutMs, events);
  }

  /** Bytes written to relayed connections that the engine holds now (for tests and metrics). */
  get relayedHeldBytes(): number {
    return this.#relays?.held ?? 0;
  }

  /** Ends the engine and everything in it. */
  destroy(): void {
    this.#b.streamDestroy(this.#engine);
  }

  // The connection-level calls NativeConn makes.
  counters(id: number): Float64Array {
    this.#one[0] = id;
    this.#b.streamCounters(this.#engine, this.#one, 1, this.#counters);
    return this.#counters;
  }

  close(id: number): void {
    this.#forget(id);
    this.#b.streamClose(this.#engine, id);
  }

  resetOnClose(id: number): void {
    this.#b.streamResetOnClose(this.#engine, id);
  }

  release(id: number): number {
    this.#forget(id);
    return this.#b.streamRelease(this.#engine, id);
  }

  write(id: number, buf: Buffer): number {
    return this.#b.streamWrite(this.#engine, id, buf);
  }

  read(id: number, buf: Buffer): number {
    return this.#b.streamRead(this.#engine, id, buf);
  }

  watch(id: number): void {
    this.#b.streamWatch(this.#engine, id);
  }

  keepAlive(id: number, idleS: number, intervalS: number, count: number): boolean {
    return this.#b.streamKeepalive?.(this.#engine, id, idleS, intervalS, count) ?? false;
  }

  localOf(id: number): Endpoint {
    const [family, address, port] = this.#b.streamLocal(this.#engine, id);
    return { address: family === 4 ? address : formatV6Text(address), port, family };
  }

  /**
   * The local address of an accepted connection: a listener bound to one address gives the same
   * one every time, so the last Endpoint (never mutated: Endpoint is read-only) is handed out again
   * instead of a new object and string per connection.
   */
  #localAt(ev: Float64Array, o: number): Endpoint {
    const last = this.#lastLocal;
    const k = this.#lastLocalAt;
    if (last && ev[o] === k[0] && ev[o + 1] === k[1] && ev[o + 2] === k[2] && ev[o + 3] === k[3] && ev[o + 4] === k[4] && ev[o + 5] === k[5]) return last;
    for (let i = 0; i < 6; i++) k[i] = ev[o + i]!;
    return (this.#lastLocal = endpointAt(ev, o));
  }

  /** The accept handler of listener `id`; the last one is kept (one listener takes most connections). */
  #listenerOf(id: number): ((conn: StreamConn) => void) | undefined {
    if (id === this.#lastListener && this.#lastOn !== undefined) return this.#lastOn;
    const on = this.#listeners.get(id);
    this.#lastListener = id;
    this.#lastOn = on;
    return on;
  }

  #forget(id: number): void {
    this.#conns[id] = undefined;
  }

  /**
   * One batch of engine records. A handler that throws must not cost the records after it (an
   * accepted connection nobody would ever dial or close, a dial whose `done` never runs): every
   * record is dispatched, and the first error is rethrown once the batch is through, so it still
   * reaches the process as an uncaught exception.
   */
  #onEvents(n: number): void {
    let failed: { err: unknown } | undefined;
    for (let i = 0; i < n; i++) {
      try {
        this.#onRecord(i * EV_RECORD);
      } catch (err) {
        failed ??= { err };
      }
    }
    if (failed) throw failed.err;
  }

  #onRecord(o: number): void {
    const ev = this.#ev;
    const type = ev[o];
    const id = ev[o + (type === EV_ACCEPT ? 2 : 1)]!;
    if (type === EV_ACCEPT) {
      const conn = new NativeConn(this, id, endpointAt(ev, o + 3), this.#localAt(ev, o + 9));
      const on = this.#listenerOf(ev[o + 1]!);
      this.#conns[id] = conn;
      if (on) on(conn);
      else conn.destroy();
    } else if (type! >= 21) {
      this.#relays?.onRecord(ev, o, type!, id);
    } else if (type === EV_READABLE) {
      this.#conns[id]?.onReadable();
    } else if (type === EV_CONNECTED) {
      const d = this.#dials[id];
      if (!d) return;
      this.#dials[id] = undefined;
      const err = ev[o + 2]!;
      if (err !== 0) {
        d.done(Object.assign(systemError(err, 'connect'), { address: d.remote.address, port: d.remote.port }));
        return;
      }
      const conn = new NativeConn(this, id, d.remote, undefined);
      if (ev[o + 3] === 1 && d.joinTo) {
        conn.joinedTo = d.joinTo;
        d.joinTo.joinedFrom = conn;
      }
      this.#conns[id] = conn;
      d.done(undefined, conn);
    } else if (type === EV_TRUNK_READY) {
      this.#trunkReady.get(id)?.(ev[o + 2]!);
    } else if (type === EV_TRUNK_END) {
      const on = this.#trunkEnds.get(id);
      this.#trunkEnds.delete(id);
      this.#trunkReady.delete(id);
      this.#forget(id);
      on?.(endCode(ev[o + 3]!, SEALED_END_CODES));
    } else if (type === EV_END || type === EV_END_KEPT) {
      const conn = this.#conns[id];
      if (!conn) return;
      this.#forget(id);
      const late = conn.joinedFrom;
      if (late && !conn.partner) {
        // A pair joined at connect moves its first bytes at once, so it can end in the batch of
        // its dial's answer: its end waits for `pipe` if the answer's taker has not called it yet.
        conn.joinedFrom = undefined;
        conn.pairWith(late, (end) => (conn.lateEnd = end));
      }
      if (conn.partner) this.#forget(conn.partner.id);
      if (type === EV_END_KEPT && conn.partner) {
        this.#conns[conn.partner.id] = conn.partner; // held again (NativeConn.endedAsPair)
        return conn.endedAsPair({ reason: END_REASONS[ev[o + 2]!] ?? 'client-closed', bytesFromClient: ev[o + 4]!, bytesToClient: ev[o + 5]!, kept: true });
      }
      const reason = END_REASONS[ev[o + 2]!] ?? 'client-error';
      const errno = ev[o + 3]!;
      const bytesFromClient = ev[o + 4]!;
      const bytesToClient = ev[o + 5]!;
      conn.endedAsPair(errno !== 0 ? { reason, bytesFromClient, bytesToClient, code: endCode(errno, SEALED_END_CODES) } : { reason, bytesFromClient, bytesToClient });
    }
  }
}

function isSequence(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function formatV6Text(address: string): string {
  return canonicalIp(address)?.address ?? address;
}

import type { RelayedConn, RelayedConnEvents } from '../relayed-conn.js';
import type { StreamEngineHandle } from './stream-binding.js';
import { systemError } from './system-error.js';
import type { NativeConn } from './native-conn.js';

/** Relayed-connection records (native/src/stream-relayed.h must agree). */
export const EV_RELAYED_DATA = 21;
export const EV_RELAYED_FIN = 22;
export const EV_RELAYED_ERROR = 23;
export const EV_RELAYED_DRAINED = 24;
export const EV_RELAYED_IDLE = 25;

/** Bytes the engine's reads of one batch land in (at most 64 KiB per read; delivered early when full). */
const DATA_AREA_BYTES = 1 << 20;

/** The engine's relayed-connection functions (native/src/stream-relayed.cc); absent from an addon built before them. */
export interface RelayedBinding {
  streamRelayedInit(engine: StreamEngineHandle, data: Uint8Array): void;
  streamRelayed(engine: StreamEngineHandle, id: number, idleTimeoutMs: number): void;
  streamRelayedWrite(engine: StreamEngineHandle, id: number, buf: Uint8Array): number;
  streamRelayedShutdown(engine: StreamEngineHandle, id: number): void;
  streamRelayedPause(engine: StreamEngineHandle, id: number, paused: boolean): void;
}

export function relayedBindingOf(binding: object): RelayedBinding | undefined {
  return typeof (binding as Partial<RelayedBinding>).streamRelayedInit === 'function' ? (binding as RelayedBinding) : undefined;
}

/** One relayed connection: its engine calls and its events' receiver. */
class NativeRelayedConn implements RelayedConn {
  bytesRead = 0;
  bytesWritten = 0;
  /** Bytes written but held in the engine. */
  held = 0;
  constructor(
    readonly relays: NativeRelays,
    readonly conn: NativeConn,
    readonly events: RelayedConnEvents,
  ) {}

  write(buf: Buffer): number {
    if (this.conn.destroyed) return -32; // EPIPE
    const held = this.relays.b.streamRelayedWrite(this.relays.engine, this.conn.id, buf);
    if (held >= 0) {
      this.bytesWritten += buf.length - held;
      this.held += held;
      this.relays.held += held;
    }
    return held;
  }

  end(): void {
    if (!this.conn.destroyed) this.relays.b.streamRelayedShutdown(this.relays.engine, this.conn.id);
  }

  pause(paused: boolean): void {
    if (!this.conn.destroyed) this.relays.b.streamRelayedPause(this.relays.engine, this.conn.id, paused);
  }

  reset(): void {
    if (this.conn.destroyed) return;
    this.conn.reset();
    this.close();
  }

  close(): void {
    this.relays.held -= this.held;
    this.held = 0;
    this.relays.forget(this.conn.id, this);
    this.conn.destroy();
  }
}

/**
 * The relayed connections of one native stream engine (native/src/stream-relayed.h): their
 * records are dispatched here by the datapath. A read's bytes are copied out of the data area (it
 * is reused by the next batch) into a buffer the receiver owns.
 */
export class NativeRelays {
  readonly #data = Buffer.alloc(DATA_AREA_BYTES);
  readonly #byId: (NativeRelayedConn | undefined)[] = [];
  /** Bytes written to relayed connections that the engine holds (the sockets did not take them yet). */
  held = 0;

  constructor(
    readonly b: RelayedBinding,
    readonly engine: StreamEngineHandle,
  ) {
    b.streamRelayedInit(engine, this.#data);
  }

  /** Starts relaying a held connection; undefined when the engine refuses (the caller uses its socket). */
  start(conn: NativeConn, idleTimeoutMs: number, events: RelayedConnEvents): RelayedConn | undefined {
    if (!conn.held || conn.destroyed || conn.unread || conn.joinedTo) return undefined;
    try {
      this.b.streamRelayed(this.engine, conn.id, Math.max(0, Math.floor(idleTimeoutMs)));
    } catch {
      return undefined;
    }
    conn.held = false;
    const rc = new NativeRelayedConn(this, conn, events);
    conn.relayed = rc;
    this.#byId[conn.id] = rc;
    return rc;
  }

  forget(id: number, rc: NativeRelayedConn): void {
    if (this.#byId[id] === rc) this.#byId[id] = undefined;
  }

  /** A relayed-connection record at `o` of the event memory. */
  onRecord(ev: Float64Array, o: number, type: number, id: number): void {
    const rc = this.#byId[id];
    if (!rc) return;
    if (type === EV_RELAYED_DATA) {
      const off = ev[o + 2]!;
      const len = ev[o + 3]!;
      const chunk = Buffer.allocUnsafe(len);
      this.#data.copy(chunk, 0, off, off + len);
      rc.bytesRead += len;
      rc.events.data(chunk);
    } else if (type === EV_RELAYED_DRAINED) {
      const n = ev[o + 2]!;
      rc.bytesWritten += n;
      rc.held -= n;
      this.held -= n;
      rc.events.drained(n);
    } else if (type === EV_RELAYED_FIN) {
      rc.events.fin();
    } else if (type === EV_RELAYED_ERROR) {
      this.forget(id, rc);
      rc.events.error(systemError(ev[o + 2]!, 'recv').code);
    } else if (type === EV_RELAYED_IDLE) {
      rc.events.idle();
    }
  }
}

import type { NativeBinding } from './binding.js';
import type { RecordCipherInfo, RecordCipherName } from '../stream-datapath.js';

/** An opaque handle to one native stream engine (native/src/stream.h). */
export type StreamEngineHandle = { readonly __streamEngine: unique symbol };

/** Event records in the shared Float64Array (native/src/stream.h must agree). */
export const EV_RECORD = 16;
export const EV_ACCEPT = 1;
export const EV_READABLE = 2;
export const EV_CONNECTED = 3;
export const EV_END = 4;
/** A sealed pair's clean end that kept its sealed connection: [5, plain id, reason, 0, from client, to client, sealed id]. */
export const EV_END_KEPT = 5;
/** A trunk's end (native/src/stream-trunk.h): [6, trunk id, reason, errno]. */
export const EV_TRUNK_END = 6;
/** A trunk's READY for an expected stream (native/src/stream-trunk.h): [7, trunk id, stream id]. */
export const EV_TRUNK_READY = 7;

/** End codes of a sealed pair beyond any errno (native/src/stream-sealed.h must agree). */
export const SEALED_END_CODES: ReadonlyMap<number, string> = new Map([
  [100001, 'ESEALED_AUTH'],
  [100002, 'ESEALED_FORMAT'],
  [100003, 'ESEALED_TRUNCATED'],
]);

/** End reasons as the engine numbers them, by number. */
export const END_REASONS = [undefined, 'client-closed', 'upstream-closed', 'idle-timeout', 'client-error', 'upstream-error'] as const;

/**
 * The stream engine's functions (native/src/stream-api.cc), in the same addon as the UDP
 * engine's. All synchronous, on the JavaScript thread. Calls that name a connection throw when
 * it is not open; read and write return -errno instead of throwing.
 */
export interface NativeStreamBinding {
  streamOpen(events: Float64Array, onEvents: (n: number) => void): StreamEngineHandle;
  streamListen(engine: StreamEngineHandle, host: string, port: number, backlog: number): number;
  streamLocal(engine: StreamEngineHandle, id: number): [family: 4 | 6, address: string, port: number];
  streamDial(engine: StreamEngineHandle, host: string, port: number, timeoutMs: number): number;
  /** TCP_CONGESTION for later listeners and dials: `all` for every one, else `local` where the peer is on this host ('' = the kernel's default). */
  streamCongestion(engine: StreamEngineHandle, local: string, all: string): void;
  streamWatch(engine: StreamEngineHandle, id: number): void;
  streamRead(engine: StreamEngineHandle, id: number, buf: Uint8Array): number;
  streamWrite(engine: StreamEngineHandle, id: number, buf: Uint8Array): number;
  streamPipe(engine: StreamEngineHandle, client: number, upstream: number, idleTimeoutMs: number): void;
  streamClose(engine: StreamEngineHandle, id: number): [bytesFromClient: number, bytesToClient: number] | undefined;
  streamRelease(engine: StreamEngineHandle, id: number): number;
  streamCounters(engine: StreamEngineHandle, ids: Int32Array, count: number, out: Float64Array): void;
  streamDestroy(engine: StreamEngineHandle): void;
  /**
   * Joins two held connections as a sealed pair (native/src/stream-sealed.h). keys: seal key 16 |
   * seal iv 12 | open key 16 | open iv 12. plainFirst: plaintext already read from `plain` (at most
   * 65536 bytes); sealedFirst: bytes already read from `sealed` (opened first); keep: a clean end
   * keeps `sealed` held (an EV_END_KEPT record; an addon built before it ignores the flag).
   */
  streamPipeSealed(
    engine: StreamEngineHandle,
    plain: number,
    sealed: number,
    keys: Uint8Array,
    sealSeq: number,
    openSeq: number,
    idleTimeoutMs: number,
    plainFirst?: Uint8Array,
    sealedFirst?: Uint8Array,
    keep?: boolean,
  ): void;
  /** For tests: records and plaintext bytes a sealer sends under one key before its KEY_UPDATE. */
  streamSealedLimits(engine: StreamEngineHandle, maxRecords: number, maxBytes: number): void;
  /** Wake-up moderation (native/src/stream-moderate.cc): bound 0-2000 us (0: off), floor in bytes/s, batch in bytes. Absent on an older addon. */
  streamModeration?(engine: StreamEngineHandle, boundUs: number, minRate: number, batch: number): void;
  /** [waits, engaged 0/1, engages, disengages, last window's rate in bytes/s, bytes read by piped pairs] */
  streamModerationState?(engine: StreamEngineHandle): [number, number, number, number, number, number];
  /**
   * Which AES-128-GCM the records of pairs and trunks keyed from now on use (native/src/sealed-record.h):
   * Intel's ipsec-mb where the addon was built with its header and the library loaded, else Node's
   * OpenSSL. `use` switches new keys (tests compare both). Optional: an addon built before it lacks it.
   */
  streamRecordCipher?(engine: StreamEngineHandle, use?: RecordCipherName): RecordCipherInfo;
  streamResetOnClose(engine: StreamEngineHandle, id: number): void;
  /** TCP keepalive on connection `id` (native/src/sockopt.cc); false when it cannot. Optional: an addon built before it lacks it. */
  streamKeepalive?(engine: StreamEngineHandle, id: number, idleS: number, intervalS: number, count: number): boolean;
  /** streamDial for a held client: the engine joins the two when the dial succeeds (the `connected` record's 4th number is 1). */
  streamDialJoin?(engine: StreamEngineHandle, host: string, port: number, timeoutMs: number, client: number, idleTimeoutMs: number): number;
  /** Makes held connection `conn` a trunk (native/src/stream-trunk.h); keys as streamPipeSealed's; pending: bytes read after its hello. */
  streamTrunkStart?(engine: StreamEngineHandle, conn: number, keys: Uint8Array, sealSeq: number, openSeq: number, pending?: Uint8Array): void;
  /** 0 or -errno (-ENOTCONN: the trunk is gone). */
  streamTrunkExpect?(engine: StreamEngineHandle, trunk: number, sid: number): number;
  /** 0 or -errno; on failure `plain` stays held. */
  streamTrunkAttach?(engine: StreamEngineHandle, trunk: number, sid: number, plain: number, idleTimeoutMs: number, expected: boolean, first?: Uint8Array): number;
  streamTrunkDrop?(engine: StreamEngineHandle, trunk: number, sid: number): number;
  streamTrunkStats?(engine: StreamEngineHandle, trunk: number): [streams: number, received: number, queued: number, frames?: number];
}

/** The stream functions of a loaded addon, or why it has none (an addon built before them). */
export function streamBindingOf(binding: NativeBinding): NativeStreamBinding | string {
  const b = binding as unknown as Partial<NativeStreamBinding>;
  return typeof b.streamOpen === 'function' ? (b as NativeStreamBinding) : 'the addon was built without the stream engine (rebuild it: node native/build.mjs)';
}

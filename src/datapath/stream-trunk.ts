import type { PairCounters, PairEnd, StreamConn } from './stream-datapath.js';

/**
 * A trunk (docs/tunnel-protocol.md "Trunks"): one sealed data connection that carries many plain
 * streams at once, multiplexed and relayed in the native stream engine with a credit window per
 * stream. The control channel still opens, answers and resets each stream; the trunk only names
 * it by its stream id. Only the native stream datapath has trunks.
 */
export interface StreamTrunk {
  /** Failed or closed: nothing more can be attached. */
  readonly dead: boolean;
  /**
   * The opening end (the gateway), before it sends STREAM_OPEN: stream `sid`'s frames are kept
   * until `attach(sid, ..., expected = true)`. `onReady` is called once: true when the far end's
   * READY for `sid` arrived (the trunk is alive for it; attach then), false when the trunk ended
   * or was closed first; never after `attach` or `drop`. False when the trunk is gone.
   */
  expect(sid: number, onReady?: (alive: boolean) => void): boolean;
  /**
   * Attaches held connection `plain` as stream `sid`: from now on its bytes move in the engine.
   * `onEnd` is called once with the reason (client-* when `plain` ended first or failed,
   * upstream-* when the trunk side did; a trunk that fails ends its streams with upstream-error)
   * and `plain`'s counters, unless the returned stop ended the stream first (a RESET to the peer).
   * Undefined when the trunk is gone or does not know `sid`: `plain` is untouched, still held, and
   * nothing was read from it (the caller falls back).
   */
  attach(sid: number, plain: StreamConn, idleTimeoutMs: number, expected: boolean, onEnd: (end: PairEnd) => void): (() => PairCounters) | undefined;
  /** Forgets stream `sid` (expected or attached) and sends RESET for it. */
  drop(sid: number): void;
  /** The engine's view: streams, bytes received not yet written to plain sides, sealed bytes waiting for the socket. */
  stats(): TrunkStats | undefined;
  /** Closes the trunk: its streams end with upstream-error, then `onEnd`. Idempotent. */
  close(): void;
}

export interface TrunkStats {
  readonly streams: number;
  readonly received: number;
  readonly queued: number;
  /** Frames sealed and opened so far: unchanged between two looks means idle both ways. */
  readonly frames: number;
}

/** The credit window per stream and direction (native/src/stream-trunk.h kTrunkWindow). */
export const TRUNK_WINDOW_BYTES = 256 * 1024;
/** The largest DATA body this end's engine sends: one read of a plain side (stream-trunk.h kTrunkChunk). */
export const TRUNK_FRAME_BYTES = 48 * 1024;

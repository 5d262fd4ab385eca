import type { NativeBinding } from './binding.js';

/** An opaque handle to one native stream engine (native/src/stream.h). */
export type StreamEngineHandle = { readonly __streamEngine: unique symbol };

/** Event records in the shared Float64Array (native/src/stream.h must agree). */
export const EV_RECORD = 16;
export const EV_ACCEPT = 1;
export const EV_READABLE = 2;
export const EV_CONNECTED = 3;
export const EV_END = 4;

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
  streamWatch(engine: StreamEngineHandle, id: number): void;
  streamRead(engine: StreamEngineHandle, id: number, buf: Uint8Array): number;
  streamWrite(engine: StreamEngineHandle, id: number, buf: Uint8Array): number;
  streamPipe(engine: StreamEngineHandle, client: number, upstream: number, idleTimeoutMs: number): void;
  streamClose(engine: StreamEngineHandle, id: number): [bytesFromClient: number, bytesToClient: number] | undefined;
  streamRelease(engine: StreamEngineHandle, id: number): number;
  streamCounters(engine: StreamEngineHandle, ids: Int32Array, count: number, out: Float64Array): void;
  streamDestroy(engine: StreamEngineHandle): void;
  /** streamDial for a held client: the engine joins the two when the dial succeeds (the `connected` record's 4th number is 1). */
  streamDialJoin?(engine: StreamEngineHandle, host: string, port: number, timeoutMs: number, client: number, idleTimeoutMs: number): number;
}

/** The stream functions of a loaded addon, or why it has none (an addon built before them). */
export function streamBindingOf(binding: NativeBinding): NativeStreamBinding | string {
  const b = binding as unknown as Partial<NativeStreamBinding>;
  return typeof b.streamOpen === 'function' ? (b as NativeStreamBinding) : 'the addon was built without the stream engine (rebuild it: node native/build.mjs)';
}

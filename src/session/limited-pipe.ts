import type { Readable, Writable } from 'node:stream';
import type { Clock, Timer } from '../core/clock.js';
import type { BandwidthGate } from '../admission/bandwidth-limiter.js';

/**
 * A source whose chunk size can be bounded (a tunnel stream merges what it received into chunks
 * of up to 64 KiB): a paced pipe asks it for chunks of at most PACED_CHUNK_BYTES.
 */
export interface ChunkBoundSource {
  maxChunkBytes: number;
}

/** The largest chunk a paced pipe asks of a ChunkBoundSource: pacing overshoots by at most this. */
export const PACED_CHUNK_BYTES = 16 * 1024;

const isChunkBound = (src: Readable): src is Readable & ChunkBoundSource => typeof (src as Partial<ChunkBoundSource>).maxChunkBytes === 'number';

/**
 * `src.pipe(dst)` under a bandwidth gate: every chunk read is written at once (nothing is held
 * here) and spent from the gate; when the gate is in debt the reader is paused, so the kernel's
 * receive window pushes back on the sender (TCP flow control: no loss), and one timer per paused
 * stream resumes it when the debt is paid. Memory is one chunk per direction beyond what the
 * sockets buffer; the long-run rate is the gate's rate. Like pipe(), an end of `src` ends `dst`,
 * and a full `dst` pauses `src` until it drains.
 */
export function pipeLimited(src: Readable, dst: Writable, gate: BandwidthGate, clock: Clock): void {
  let draining = false;
  let timer: Timer | undefined;
  if (isChunkBound(src)) src.maxChunkBytes = Math.min(src.maxChunkBytes, PACED_CHUNK_BYTES);
  const wake = () => {
    timer = undefined;
    const waitMs = gate.spend(0); // a route bucket shared with other flows may have been spent meanwhile
    if (waitMs > 0) timer = clock.setTimeout(wake, Math.ceil(waitMs));
    else if (!draining) src.resume();
  };
  src.on('data', (chunk: Buffer) => {
    if (!dst.write(chunk)) {
      draining = true;
      src.pause();
    }
    const waitMs = gate.spend(chunk.length);
    if (waitMs > 0 && timer === undefined) {
      src.pause();
      timer = clock.setTimeout(wake, Math.ceil(waitMs));
    }
  });
  dst.on('drain', () => {
    draining = false;
    if (timer === undefined) src.resume();
  });
  src.once('end', () => dst.end());
  src.once('close', () => {
    timer?.cancel();
    timer = undefined;
  });
  src.resume(); // a reader paused while the upstream was dialed does not start on a 'data' listener alone
}

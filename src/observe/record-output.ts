import pino from 'pino';
import { RotatingFileWriter, type RecordWriter, type RotatingFileOptions } from './rotating-file.js';

export interface RecordOutputOptions extends Omit<RotatingFileOptions, 'maxBytes' | 'maxFiles'> {
  /** Rotation size for a file output. Default 100 MiB. */
  readonly maxBytes?: number;
  /** Rotated files kept for a file output. Default 5. */
  readonly maxFiles?: number;
}

/**
 * Opens where JSON-lines records go: `stdout`, `stderr`, or a file path (rotated by size).
 * Either way writes never block and never buffer more than `maxBufferBytes`; what does not fit
 * is dropped and counted in `dropped`.
 */
export function openRecordOutput(output: string, opts: RecordOutputOptions = {}): RecordWriter {
  if (output === 'stdout' || output === 'stderr') return openStdio(output === 'stdout' ? 1 : 2, opts);
  return new RotatingFileWriter(output, { maxBytes: 100 * 1024 * 1024, maxFiles: 5, ...opts });
}

/**
 * A pipe on stdout is written synchronously by `process.stdout` on Linux, so a stalled reader
 * would stall the relay; pino's asynchronous destination writes from the thread pool instead and
 * reports what exceeds `maxLength` as a 'drop' event.
 */
function openStdio(fd: 1 | 2, opts: RecordOutputOptions): RecordWriter {
  const boom = pino.destination({ dest: fd, sync: false, maxLength: opts.maxBufferBytes ?? 4 * 1024 * 1024, minLength: 0 });
  let dropped = 0;
  let written = 0;
  let broken: string | undefined;
  let closed: Promise<void> | undefined;
  boom.on('drop', () => void dropped++);
  boom.on('error', (err: unknown) => {
    // EPIPE and friends: the reader is gone; keep counting what would have gone there.
    if (!broken) opts.onError?.(err);
    broken = err instanceof Error ? err.message : String(err);
  });
  return {
    get dropped() {
      return dropped;
    },
    get written() {
      return written;
    },
    get failure() {
      return broken;
    },
    write(line) {
      if (closed || broken) {
        dropped++;
        return;
      }
      const before = dropped;
      try {
        boom.write(line);
      } catch (err) {
        broken = err instanceof Error ? err.message : String(err);
        dropped++;
        return;
      }
      if (dropped === before) written++;
    },
    /** Resolves once buffered lines are out; with a stalled reader that may be never, so race it against a deadline. */
    close() {
      closed ??= new Promise<void>((resolve) => {
        if (broken || (boom as unknown as { destroyed: boolean }).destroyed) return resolve();
        boom.once('close', () => resolve());
        boom.once('error', () => resolve());
        boom.end(); // for fd 1 and 2, sonic-boom leaves the descriptor open
      });
      return closed;
    },
  };
}

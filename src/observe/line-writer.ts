import pino from 'pino';

/** A non-blocking JSON-lines destination. */
export interface LineWriter {
  write(line: string): void;
  /** Flushes what is buffered; resolves when written. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens `stdout`, `stderr` or a file (appended, created with its folders) through pino's
 * asynchronous destination. A destination that cannot keep up past `maxBufferBytes` drops
 * lines instead of growing without bound or blocking the data path.
 */
export function openLineWriter(output: string, maxBufferBytes = 16 * 1024 * 1024): LineWriter & { readonly dropped: number } {
  const dest = output === 'stdout' ? 1 : output === 'stderr' ? 2 : output;
  const boom = pino.destination({ dest, sync: false, mkdir: true, append: true, maxLength: maxBufferBytes, minLength: 0 });
  let closed: Promise<void> | undefined;
  let dropped = 0;
  // sonic-boom reports each line that did not fit under maxLength; metrics read the count.
  boom.on('drop', () => void dropped++);
  return {
    /** Lines dropped so far because the destination could not keep up, or written after close. Only grows. */
    get dropped() {
      return dropped;
    },
    write(line) {
      if (closed) dropped++;
      else boom.write(line);
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        if (typeof dest === 'number') {
          try {
            boom.flushSync();
          } catch {
            /* nothing more can be done for a closed pipe */
          }
          resolve();
          return;
        }
        boom.once('close', () => resolve());
        boom.end();
      });
      return closed;
    },
  };
}

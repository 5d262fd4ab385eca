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
export function openLineWriter(output: string, maxBufferBytes = 16 * 1024 * 1024): LineWriter {
  const dest = output === 'stdout' ? 1 : output === 'stderr' ? 2 : output;
  const boom = pino.destination({ dest, sync: false, mkdir: true, append: true, maxLength: maxBufferBytes, minLength: 0 });
  let closed: Promise<void> | undefined;
  return {
    write(line) {
      if (!closed) boom.write(line);
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

/** A non-blocking JSON-lines destination (record-output.ts opens the real ones). */
export interface LineWriter {
  write(line: string): void;
  /** Flushes what is buffered; resolves when written. Idempotent. */
  close(): Promise<void>;
}

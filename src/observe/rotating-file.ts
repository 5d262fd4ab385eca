import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { systemClock, type Clock } from '../core/clock.js';
import { makeDir } from '../core/make-dir.js';
import type { LineWriter } from './line-writer.js';

/** A LineWriter that sheds load instead of blocking or buffering without bound. */
export interface RecordWriter extends LineWriter {
  /** Lines refused or lost so far (buffer full, output failing, writer closed). Only grows. */
  readonly dropped: number;
  /** Lines handed to the output so far. */
  readonly written: number;
  /** Why the output is failing right now (the last error's message), or undefined while it works. */
  readonly failure: string | undefined;
}

/** The file-system calls the writer makes; node:fs/promises by default, a stalling fake in tests. */
export interface RotatingFs {
  open(path: string, flags: 'a' | 'w'): Promise<RotatingFileHandle>;
  rename(from: string, to: string): Promise<void>;
  mkdir(path: string, opts: { recursive: true }): Promise<unknown>;
}
export interface RotatingFileHandle {
  write(buf: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

export interface RotatingFileOptions {
  /** A file is rotated before a line would take it past this size, so none exceeds it (a single longer line gets a file of its own). */
  readonly maxBytes: number;
  /** Rotated files kept beside the live one: `path.1` (newest) … `path.N`; the oldest is overwritten. 0 truncates the live file instead. */
  readonly maxFiles: number;
  /** Bytes queued for writing beyond which new lines are dropped. Default 4 MiB. */
  readonly maxBufferBytes?: number;
  /** After an I/O failure, lines are dropped without trying the disk for this long. Default 1000 ms. */
  readonly retryAfterMs?: number;
  /** Called when the output starts failing (once per failure spell, not per line). */
  readonly onError?: (err: unknown) => void;
  /**
   * Writes start at most this often (unless 256 KiB are already queued), so lines arriving
   * together go out in one write. Default 0: each write starts as soon as the previous one ends.
   * Every write costs a thread-pool round trip; under load, a few ms gather hundreds of lines
   * into one. `close` does not wait for it.
   */
  readonly lingerMs?: number;
  readonly clock?: Clock;
  readonly fs?: RotatingFs;
}

const nodeFs: RotatingFs = { open: (p, f) => open(p, f), rename, mkdir: (p) => makeDir(p) };
/** Queued bytes that start a write at once, without waiting out `lingerMs`. */
const LINGER_FULL_BYTES = 256 * 1024;
/** Largest single write; bounds the copy made when a long queue is flushed. */
const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * Appends lines to a file and rotates it by size (`file` → `file.1` → `file.2` …, like logrotate's
 * `rotate N`). `write` never waits and never throws: lines queue in memory up to `maxBufferBytes`
 * and are written by one asynchronous loop; beyond that they are dropped and counted, so a slow
 * or stalled disk costs records, never the data path or unbounded memory. Lines are written whole
 * and in order. Only this writer may write to `path` or its rotated files.
 */
export class RotatingFileWriter implements RecordWriter {
  readonly #path: string;
  readonly #maxBytes: number;
  readonly #maxFiles: number;
  readonly #maxBuffer: number;
  readonly #retryAfterMs: number;
  readonly #clock: Clock;
  readonly #fs: RotatingFs;
  readonly #onError: (err: unknown) => void;
  readonly #lingerMs: number;
  #linger: { readonly timer: { cancel(): void }; readonly resolve: () => void } | undefined;

  #queue: { line: string; bytes: number }[] = [];
  #queuedBytes = 0;
  #file: RotatingFileHandle | undefined;
  #size = 0;
  #pumping: Promise<void> | undefined;
  #failedUntil = -Infinity;
  #failing = false;
  #failure: string | undefined;
  #closed: Promise<void> | undefined;
  #dropped = 0;
  #written = 0;
  #rotations = 0;

  constructor(path: string, opts: RotatingFileOptions) {
    if (!(opts.maxBytes > 0)) throw new RangeError('maxBytes must be positive');
    if (!(Number.isInteger(opts.maxFiles) && opts.maxFiles >= 0)) throw new RangeError('maxFiles must be a whole number ≥ 0');
    this.#path = path;
    this.#maxBytes = opts.maxBytes;
    this.#maxFiles = opts.maxFiles;
    this.#maxBuffer = opts.maxBufferBytes ?? 4 * 1024 * 1024;
    this.#retryAfterMs = opts.retryAfterMs ?? 1000;
    this.#clock = opts.clock ?? systemClock;
    this.#fs = opts.fs ?? nodeFs;
    this.#onError = opts.onError ?? (() => {});
    this.#lingerMs = opts.lingerMs ?? 0;
  }

  get dropped(): number {
    return this.#dropped;
  }
  get written(): number {
    return this.#written;
  }
  get failure(): string | undefined {
    return this.#failure;
  }
  get rotations(): number {
    return this.#rotations;
  }
  /** Bytes waiting to be written; never more than `maxBufferBytes`. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  write(line: string): void {
    if (this.#closed || this.#clock.now() < this.#failedUntil) {
      this.#dropped++;
      return;
    }
    const bytes = Buffer.byteLength(line);
    if (this.#queuedBytes + bytes > this.#maxBuffer) {
      this.#dropped++;
      return;
    }
    this.#queue.push({ line, bytes });
    this.#queuedBytes += bytes;
    this.#pumping ??= this.#pump();
  }

  /** Resolves when every line queued so far is written or dropped. */
  flush(): Promise<void> {
    return this.#pumping ?? Promise.resolve();
  }

  /** Writes what is queued, then closes the file. Idempotent; later writes are dropped. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#endLinger();
      await this.flush();
      const f = this.#file;
      this.#file = undefined;
      await f?.close().catch(() => {});
    })();
    return this.#closed;
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        // At most one write per linger period, unless a full batch is already waiting.
        if (this.#lingerMs > 0 && !this.#closed && this.#queuedBytes < LINGER_FULL_BYTES) {
          await new Promise<void>((resolve) => (this.#linger = { resolve, timer: this.#clock.setTimeout(resolve, this.#lingerMs) }));
          this.#linger = undefined;
        }
        try {
          await this.#writeBatch();
          this.#failing = false;
          this.#failure = undefined;
        } catch (err) {
          this.#fail(err);
        }
      }
    } finally {
      // Cleared in the same turn the queue was seen empty, so a write right after starts a new loop.
      this.#pumping = undefined;
    }
  }

  #endLinger(): void {
    this.#linger?.timer.cancel();
    this.#linger?.resolve();
  }

  async #writeBatch(): Promise<void> {
    const file = this.#file ?? (await this.#open());
    let room = this.#maxBytes - this.#size;
    if (this.#size > 0 && this.#queue[0]!.bytes > room) {
      await this.#rotate();
      return;
    }
    const parts: string[] = [];
    let bytes = 0;
    let n = 0;
    room = Math.min(Math.max(room, 0), MAX_BATCH_BYTES);
    while (n < this.#queue.length && bytes + this.#queue[n]!.bytes <= room) bytes += this.#queue[n++]!.bytes;
    if (n === 0) bytes = this.#queue[n++]!.bytes; // one line longer than maxBytes, into an empty file
    for (let i = 0; i < n; i++) parts.push(this.#queue[i]!.line);
    const buf = Buffer.from(parts.join(''));
    // Off the queue before the write (if it fails, these are the lines dropped), but still counted
    // in queuedBytes until it returns, so a stalled write holds the buffer bound too.
    this.#queue = this.#queue.slice(n);
    try {
      let off = 0;
      while (off < buf.length) off += (await file.write(buf, off, buf.length - off)).bytesWritten;
    } catch (err) {
      this.#dropped += n;
      throw err;
    } finally {
      this.#queuedBytes -= bytes;
    }
    this.#size += buf.length;
    this.#written += n;
  }

  async #open(): Promise<RotatingFileHandle> {
    await this.#fs.mkdir(dirname(this.#path), { recursive: true });
    const f = await this.#fs.open(this.#path, 'a');
    try {
      this.#size = (await f.stat()).size;
    } catch (err) {
      await f.close().catch(() => {});
      throw err;
    }
    this.#file = f;
    return f;
  }

  async #rotate(): Promise<void> {
    const f = this.#file;
    this.#file = undefined;
    await f?.close();
    if (this.#maxFiles === 0) {
      await (await this.#fs.open(this.#path, 'w')).close();
    } else {
      for (let i = this.#maxFiles - 1; i >= 1; i--) await renameIfExists(this.#fs, `${this.#path}.${i}`, `${this.#path}.${i + 1}`);
      await this.#fs.rename(this.#path, `${this.#path}.1`);
    }
    this.#size = 0;
    this.#rotations++;
  }

  #fail(err: unknown): void {
    const f = this.#file;
    this.#file = undefined;
    void f?.close().catch(() => {});
    // Everything queued goes too: the disk just failed, and waiting lines must not pile up behind it.
    this.#dropped += this.#queue.length;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#failedUntil = this.#clock.now() + this.#retryAfterMs;
    this.#failure = err instanceof Error ? err.message : String(err);
    if (!this.#failing) {
      this.#failing = true;
      this.#onError(err);
    }
  }
}

async function renameIfExists(fs: RotatingFs, from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BanInfo } from '../../observe/events.js';

/** The state file's format version; a file of another version is reported and ignored. */
const VERSION = 1;

/** What reading the state file found: the bans, nothing (no file yet), or a problem to report. */
export type BanFileRead = { kind: 'ok'; bans: BanInfo[] } | { kind: 'absent' } | { kind: 'malformed'; problem: string };

/**
 * Reads `path` (`{"version":1,"bans":[{target, source, reason, createdAt, expiresAt}]}`). Never
 * throws: a file that cannot be read or parsed is `malformed` with what is wrong, and the caller
 * starts with an empty list.
 */
export async function readBanFile(path: string): Promise<BanFileRead> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    return { kind: 'malformed', problem: `cannot read: ${(err as Error).message}` };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { kind: 'malformed', problem: `not JSON: ${(err as Error).message}` };
  }
  const d = data as { version?: unknown; bans?: unknown };
  if (typeof d !== 'object' || d === null || d.version !== VERSION || !Array.isArray(d.bans)) {
    return { kind: 'malformed', problem: `expected {"version": ${VERSION}, "bans": [...]}` };
  }
  const bans: BanInfo[] = [];
  for (const [i, b] of (d.bans as unknown[]).entries()) {
    const e = b as Record<string, unknown>;
    const ok =
      typeof e === 'object' && e !== null && typeof e.target === 'string' && typeof e.source === 'string' && typeof e.reason === 'string' &&
      Number.isFinite(e.createdAt) && Number.isFinite(e.expiresAt);
    if (!ok) return { kind: 'malformed', problem: `bans[${i}]: expected target, source, reason (strings), createdAt, expiresAt (numbers)` };
    bans.push({ target: e.target as string, source: e.source as string, reason: e.reason as string, createdAt: e.createdAt as number, expiresAt: e.expiresAt as number });
  }
  return { kind: 'ok', bans };
}

/**
 * Writes the list to `path` atomically (a temporary file renamed over it), one write at a time:
 * a save asked for while one runs is folded into one more write of the latest list. A crash
 * mid-write leaves the previous file whole. Errors go to `onError` and never stop the relay.
 */
export class BanFileWriter {
  #running: Promise<void> | undefined;
  #pending: (() => readonly BanInfo[]) | undefined;

  constructor(
    readonly path: string,
    private readonly onError: (err: Error) => void,
  ) {}

  save(list: () => readonly BanInfo[]): void {
    this.#pending = list;
    this.#running ??= this.#drain();
  }

  /** Resolves when every save asked for so far is on disk (or failed and was reported). */
  async flushed(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending) {
        const list = this.#pending();
        this.#pending = undefined;
        const tmp = `${this.path}.${process.pid}.tmp`;
        try {
          await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
          await writeFile(tmp, `${JSON.stringify({ version: VERSION, bans: list }, null, 1)}\n`, { mode: 0o600 });
          await rename(tmp, this.path);
        } catch (err) {
          this.onError(err as Error);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }
}

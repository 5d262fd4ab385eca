import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { ConntrackLineError } from './event.js';

/**
 * What a ConntrackSource runs (the tool, as a child process) and what it reports about it
 * (lifecycle statuses and counters). conntrack-source.ts holds the supervision itself.
 */

/** The part of a ChildProcess the source uses; node's ChildProcess fits, and tests pass fakes. */
export interface ChildProcessLike {
  readonly pid?: number | undefined;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  kill(signal?: NodeJS.Signals): boolean;
  on(event: 'close', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** Starts `file` with `args`, stdout and stderr piped. May throw or emit 'error' (ENOENT, EACCES). */
export type SpawnProcess = (file: string, args: readonly string[]) => ChildProcessLike;

export const nodeSpawn: SpawnProcess = (file, args) => spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });

export type ConntrackStatus =
  | { type: 'spawned'; pid: number; command: readonly string[] }
  /** The tool ended while it should have been running; the next attempt is in `retryInMs`. */
  | { type: 'exited'; pid: number | undefined; code: number | null; signal: NodeJS.Signals | null; runMs: number; stderr: string; retryInMs: number }
  | { type: 'spawn-failed'; error: Error; retryInMs: number }
  /** The first unparsable line of a run (the rest are only counted in `stats.linesRejected`). */
  | { type: 'line-rejected'; error: ConntrackLineError; line: string }
  /** The tool reported ENOBUFS: the kernel dropped events. Once per run; see `stats.eventsLostWarnings`. */
  | { type: 'events-lost'; detail: string }
  | { type: 'sysctl-set'; name: string; from: string; to: string }
  | { type: 'sysctl-restored'; name: string; to: string }
  | { type: 'sysctl-failed'; name: string; error: unknown };

export interface ConntrackStats {
  /** Tool processes that started (a failed exec is not counted). */
  spawned: number;
  exits: number;
  lines: number;
  linesRejected: number;
  linesOverlong: number;
  eventsLostWarnings: number;
  recordsWritten: number;
  /** Events of protocols without a record format (GRE, unknown numbers). */
  skippedProtocol: number;
  /** Events whose direction could not be decided (unknownDirection: skip). */
  skippedDirection: number;
}

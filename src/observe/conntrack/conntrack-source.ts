import type { Timer } from '../../core/clock.js';
import { SluiceError } from '../../core/errors.js';
import { Backoff } from '../../core/backoff.js';
import { compileDirection } from './direction.js';
import { isConntrackLineError, type ConntrackEvent } from './event.js';
import { MAX_LINE, parseEventLine } from './event-parser.js';
import { ConntrackFlows } from './conntrack-flows.js';
import { LineSplitter } from './line-splitter.js';
import { SysctlOverride, procSysctl, type Sysctl } from './sysctl.js';
import { nodeSpawn, type ChildProcessLike, type ConntrackStats, type ConntrackStatus } from './source-contract.js';
import type { ConntrackSourceDeps, ConntrackSourceOptions } from './source-options.js';
import { nextSourceState, type ConntrackSourceState } from './source-state.js';

export type { ConntrackSourceDeps, ConntrackSourceOptions } from './source-options.js';
export type { ConntrackSourceState } from './source-state.js';

interface Run {
  readonly child: ChildProcessLike;
  readonly startedAt: number;
  readonly done: Promise<void>;
  readonly splitter: LineSplitter;
  end(code: number | null, signal: NodeJS.Signals | null): void;
  rejectedReported: boolean;
  lostReported: boolean;
  stderr: string;
}

const STDERR_TAIL = 4096;

/**
 * Kernel flows (Linux): runs `conntrack -E -e NEW,DESTROY -o extended,id,timestamp` and turns its
 * events into flow records (`source: 'conntrack'`) written through the node's FlowRecorder.
 * NEW becomes `start`, DESTROY becomes `end`; there are no `update` records (docs/conntrack.md;
 * the event-to-record rules are conntrack-flows.ts).
 *
 * Supervision: if the tool exits or cannot be started, it is started again after an exponential
 * backoff with jitter (5 s, 10 s, ... 5 min, forever), timed on the injected clock; a run that
 * lasted `resetAfterMs` starts the schedule over. Events that happen while no tool runs are lost.
 *
 * Lifetime: `start`, `stop` and `close` are idempotent and serialised (a `stop` during `start`
 * waits for it). `stop` kills the tool (SIGTERM, then SIGKILL), waits for it to exit and restores
 * the sysctls it changed; the source may be started again. `close` is a final stop; `start` after
 * it rejects with `SLUICE_ERR_CLOSED`. The source owns its child process and nothing else.
 */
export class ConntrackSource implements AsyncDisposable {
  readonly #deps: ConntrackSourceDeps;
  readonly #command: readonly string[];
  readonly #args: readonly string[];
  readonly #flows: ConntrackFlows;
  readonly #backoff: Backoff;
  readonly #resetAfterMs: number;
  readonly #stopTimeoutMs: number;
  readonly #sysctls: SysctlOverride[];
  readonly #stats: ConntrackStats = {
    spawned: 0,
    exits: 0,
    lines: 0,
    linesRejected: 0,
    linesOverlong: 0,
    eventsLostWarnings: 0,
    recordsWritten: 0,
    skippedProtocol: 0,
    skippedDirection: 0,
  };
  #state: ConntrackSourceState = 'idle';
  #ops: Promise<unknown> = Promise.resolve();
  #run: Run | undefined;
  #timer: Timer | undefined;
  readonly #onAbort = () => void this.close().catch(() => {});

  /** Throws SluiceError `SLUICE_ERR_CONFIG_INVALID` for bad networks, marks or backoff. */
  constructor(opts: ConntrackSourceOptions, deps: ConntrackSourceDeps) {
    this.#deps = deps;
    const directionOf = compileDirection(opts);
    this.#backoff = new Backoff(opts.backoff, deps.random, 'conntrack');
    this.#resetAfterMs = opts.backoff?.resetAfterMs ?? 60_000;
    this.#flows = new ConntrackFlows({ directionOf, maxTracked: opts.maxTrackedFlows ?? 65_536, instanceId: deps.instanceId, wallNow: () => deps.clock.wallNow() });
    this.#stopTimeoutMs = opts.stopTimeoutMs ?? 2_000;
    this.#command = opts.command ?? ['conntrack'];
    if (this.#command.length === 0) throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', 'conntrack: command must name a program');
    const buffer = opts.netlinkBufferBytes ?? 4 * 1024 * 1024;
    if (!(Number.isInteger(buffer) && buffer >= 0)) throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', 'conntrack: netlinkBufferBytes must be a whole number');
    this.#args = [...this.#command.slice(1), '-E', '-e', 'NEW,DESTROY', '-o', 'extended,id,timestamp', ...(buffer > 0 ? ['-b', String(buffer)] : [])];
    const sysctl = deps.sysctl ?? procSysctl();
    this.#sysctls = [];
    if (opts.accounting ?? true) this.#sysctls.push(new SysctlOverride(sysctl, 'net.netfilter.nf_conntrack_acct', '1'));
    if (opts.timestamps ?? false) this.#sysctls.push(new SysctlOverride(sysctl, 'net.netfilter.nf_conntrack_timestamp', '1'));
    deps.signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (deps.signal?.aborted) this.#onAbort();
  }

  get state(): ConntrackSourceState {
    return this.#state;
  }

  /** The running tool's pid, if one runs. */
  get pid(): number | undefined {
    return this.#run?.child.pid;
  }

  /** Counters since construction (a copy). */
  get stats(): Readonly<ConntrackStats> {
    return { ...this.#stats };
  }

  /** The full argument vector the tool is started with (for logs and docs). */
  get commandLine(): readonly string[] {
    return [this.#command[0]!, ...this.#args];
  }

  /**
   * Applies the sysctls (a failure is reported, not fatal: records then lack counters) and starts
   * the tool. Resolves once the first attempt is made, not when the kernel subscription is live;
   * a tool that fails to start is retried in the background. Idempotent while started.
   */
  start(): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'closed') throw new SluiceError('SLUICE_ERR_CLOSED', 'conntrack source is closed');
      if (this.#state !== 'idle') return;
      this.#to('starting');
      for (const s of this.#sysctls) {
        try {
          const r = await s.apply();
          if (r.changed) this.#report({ type: 'sysctl-set', name: s.name, from: r.previous, to: s.value });
        } catch (error) {
          this.#report({ type: 'sysctl-failed', name: s.name, error });
        }
      }
      this.#spawn();
    });
  }

  /** Stops the tool, waits for it to exit and restores the sysctls. Idempotent; `start` may follow. */
  stop(): Promise<void> {
    return this.#serial(() => this.#halt('idle'));
  }

  /** A final `stop`. Idempotent. */
  close(): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'closed') return;
      await this.#halt('closed');
      this.#deps.signal?.removeEventListener('abort', this.#onAbort);
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #serial(op: () => Promise<void>): Promise<void> {
    const p = this.#ops.then(op);
    this.#ops = p.catch(() => {});
    return p;
  }

  #to(state: ConntrackSourceState): void {
    this.#state = nextSourceState(this.#state, state);
  }

  async #halt(final: 'idle' | 'closed'): Promise<void> {
    if (this.#state === 'idle' || this.#state === 'closed') {
      if (final === 'closed' && this.#state === 'idle') this.#to('closed');
      return;
    }
    this.#to('stopping');
    this.#timer?.cancel();
    this.#timer = undefined;
    const run = this.#run;
    if (run) {
      run.child.kill('SIGTERM');
      const kill = this.#deps.clock.setTimeout(() => run.child.kill('SIGKILL'), this.#stopTimeoutMs);
      await run.done;
      kill.cancel();
    }
    for (const s of [...this.#sysctls].reverse()) {
      try {
        const r = await s.restore();
        if (r.restored) this.#report({ type: 'sysctl-restored', name: s.name, to: s.previous ?? '' });
      } catch (error) {
        this.#report({ type: 'sysctl-failed', name: s.name, error });
      }
    }
    this.#to(final);
  }

  #spawn(): void {
    this.#timer = undefined;
    if (this.#state !== 'starting' && this.#state !== 'waiting') return;
    const { clock } = this.#deps;
    const file = this.#command[0]!;
    let child: ChildProcessLike;
    try {
      child = (this.#deps.spawn ?? nodeSpawn)(file, this.#args);
    } catch (err) {
      this.#retry({ type: 'spawn-failed', error: err instanceof Error ? err : new Error(String(err)) });
      return;
    }
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    let spawnError: Error | undefined;
    const run: Run = {
      child,
      startedAt: clock.now(),
      done,
      splitter: new LineSplitter(MAX_LINE, (line) => this.#onLine(run, line), () => void this.#stats.linesOverlong++),
      rejectedReported: false,
      lostReported: false,
      stderr: '',
      end: (code, signal) => {
        if (this.#run !== run) return;
        this.#run = undefined;
        run.splitter.end();
        this.#stats.exits++;
        resolveDone();
        if (this.#state !== 'running') return; // stopping: the stop owns what comes next
        const runMs = Math.round(clock.now() - run.startedAt);
        if (runMs >= this.#resetAfterMs) this.#backoff.reset();
        if (spawnError && child.pid === undefined) this.#retry({ type: 'spawn-failed', error: spawnError });
        else this.#retry({ type: 'exited', pid: child.pid, code, signal, runMs, stderr: run.stderr });
      },
    };
    this.#run = run;
    this.#to('running');
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => run.splitter.push(chunk));
    child.stdout?.on('error', () => {});
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => this.#onStderr(run, chunk));
    child.stderr?.on('error', () => {});
    child.on('error', (err) => {
      // Spawning failed (ENOENT, EACCES): no 'close' may follow. A failed kill() is also an
      // 'error', but then the process still runs and its 'close' will come.
      if (child.pid !== undefined) return;
      spawnError = err;
      run.end(null, null);
    });
    child.on('close', (code, signal) => run.end(code, signal));
    // Node reports a failed exec (ENOENT, EACCES) with no pid and an 'error' on the next tick.
    if (child.pid === undefined) return;
    this.#stats.spawned++;
    this.#report({ type: 'spawned', pid: child.pid, command: this.commandLine });
  }

  #retry(status: Omit<Extract<ConntrackStatus, { type: 'exited' }>, 'retryInMs'> | Omit<Extract<ConntrackStatus, { type: 'spawn-failed' }>, 'retryInMs'>): void {
    const delay = this.#backoff.next();
    this.#to('waiting');
    this.#timer = this.#deps.clock.setTimeout(() => this.#spawn(), delay);
    this.#report({ ...status, retryInMs: delay } as ConntrackStatus);
  }

  #onStderr(run: Run, chunk: string): void {
    run.stderr = (run.stderr + chunk).slice(-STDERR_TAIL);
    if (chunk.includes('ENOBUFS')) {
      this.#stats.eventsLostWarnings++;
      if (!run.lostReported) {
        run.lostReported = true;
        this.#report({ type: 'events-lost', detail: chunk.trim().split('\n')[0]!.slice(0, 200) });
      }
    }
  }

  #onLine(run: Run, line: string): void {
    this.#stats.lines++;
    let ev: ConntrackEvent;
    try {
      ev = parseEventLine(line);
    } catch (err) {
      if (!isConntrackLineError(err)) throw err;
      this.#stats.linesRejected++;
      if (!run.rejectedReported) {
        run.rejectedReported = true;
        this.#report({ type: 'line-rejected', error: err, line: line.slice(0, 300) });
      }
      return;
    }
    this.#onEvent(ev);
  }

  #onEvent(ev: ConntrackEvent): void {
    const r = this.#flows.onEvent(ev);
    if (r === 'update') return;
    if (r === 'skipped-protocol') this.#stats.skippedProtocol++;
    else if (r === 'skipped-direction') this.#stats.skippedDirection++;
    else {
      this.#deps.recorder.write(r);
      this.#stats.recordsWritten++;
    }
  }

  #report(status: ConntrackStatus): void {
    try {
      this.#deps.onStatus?.(status);
    } catch {
      // A status sink that throws must not take the event loop or the supervisor down.
    }
  }
}

import type { Clock } from '../core/clock.js';
import type { ContainerInfo } from './container.js';
import type { ContainerEngine, EngineIdentity, EngineEvent } from './engine-client.js';

export type EngineState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface WatcherObserver {
  /** The running containers changed (after a resync or an event). The map is the watcher's own: read it, do not keep it. */
  changed(containers: ReadonlyMap<string, ContainerInfo>): void;
  connected(identity: EngineIdentity, containers: number): void;
  /**
   * The engine could not be reached or the connection was lost; the next try is in `retryInMs`.
   * `attempt` counts failures since the last successful sync (1 = the first).
   */
  lost(err: unknown, retryInMs: number, attempt: number): void;
}

/** Events after which a container runs (or runs under a new name or settings): its state is read again. */
const UP = new Set(['start', 'restart', 'unpause', 'rename', 'update']);
/**
 * Events after which it no longer serves. Docker: die, stop, pause, destroy. Podman's compatible
 * API: the same plus died, remove, cleanup. (`kill` only sends a signal; a `die` follows if the
 * container ends.)
 */
const DOWN = new Set(['die', 'died', 'stop', 'pause', 'destroy', 'remove', 'cleanup']);

/**
 * Follows the running containers of one engine: subscribes to its events, then lists what runs
 * (so nothing that happens between the two is missed), then applies events one at a time in
 * stream order. A lost connection keeps the last known containers (their routes stay up while
 * the engine restarts) and reconnects with exponential backoff; every reconnect resynchronises
 * from a full list, so a container that came or went meanwhile is neither missed nor duplicated.
 */
export class ContainerWatcher {
  readonly #containers = new Map<string, ContainerInfo>();
  readonly #abort = new AbortController();
  #state: EngineState = 'connecting';
  #identity: EngineIdentity | undefined;
  #lastSyncAt: number | undefined;
  #lastError: string | undefined;
  #done: Promise<void> | undefined;

  constructor(
    private readonly engine: ContainerEngine,
    private readonly backoff: { readonly minMs: number; readonly maxMs: number },
    private readonly clock: Clock,
    private readonly observer: WatcherObserver,
  ) {}

  get state(): EngineState {
    return this.#state;
  }

  get identity(): EngineIdentity | undefined {
    return this.#identity;
  }

  /** Wall time of the last full list, and the last connection problem, for the admin API. */
  get lastSyncAt(): number | undefined {
    return this.#lastSyncAt;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  start(): void {
    this.#done ??= this.#run();
  }

  /** Stops following; idempotent. The routes already applied are not touched. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#done;
    this.#state = 'closed';
  }

  async #run(): Promise<void> {
    let delayMs = this.backoff.minMs;
    let attempt = 0;
    while (!this.#abort.signal.aborted) {
      const conn = new AbortController();
      const signal = AbortSignal.any([this.#abort.signal, conn.signal]);
      let failure: unknown;
      let tail = Promise.resolve();
      // One task at a time, in stream order; a failed task drops the connection, and the
      // reconnect's full list repairs whatever that task would have done.
      const enqueue = (task: () => Promise<void>) => {
        tail = tail.then(task).catch((err: unknown) => {
          failure ??= err;
          conn.abort();
        });
        return tail;
      };
      try {
        const stream = await this.engine.subscribe(signal, (e) => void enqueue(() => this.#onEvent(e, signal)));
        await enqueue(async () => {
          this.#identity = await this.engine.identify(signal);
          await this.#resync(signal);
        });
        if (failure === undefined && !signal.aborted) {
          this.#state = 'connected';
          this.#lastError = undefined;
          delayMs = this.backoff.minMs;
          attempt = 0;
          this.observer.connected(this.#identity!, this.#containers.size);
        }
        await stream.ended;
        conn.abort();
        await tail;
      } catch (err) {
        failure ??= err;
      }
      if (this.#abort.signal.aborted) break;
      this.#state = 'disconnected';
      this.#lastError = failure instanceof Error ? failure.message : failure === undefined ? 'the event stream ended' : String(failure);
      this.observer.lost(failure, delayMs, ++attempt);
      await this.#sleep(delayMs);
      delayMs = Math.min(delayMs * 2, this.backoff.maxMs);
    }
  }

  async #resync(signal: AbortSignal): Promise<void> {
    const list = await this.engine.listRunning(signal);
    if (signal.aborted) return;
    this.#containers.clear();
    for (const c of list) this.#containers.set(c.id, c);
    this.#lastSyncAt = this.clock.wallNow();
    this.observer.changed(this.#containers);
  }

  async #onEvent(e: EngineEvent, signal: AbortSignal): Promise<void> {
    if (UP.has(e.action)) {
      const c = await this.engine.runningContainer(e.id, signal);
      if (signal.aborted) return;
      if (c) this.#containers.set(c.id, c);
      else if (!this.#containers.delete(e.id)) return;
    } else if (DOWN.has(e.action)) {
      if (!this.#containers.delete(e.id)) return;
    } else {
      return;
    }
    this.observer.changed(this.#containers);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(done, ms);
      const signal = this.#abort.signal;
      function done() {
        timer.cancel();
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

import { SluiceError } from '../core/errors.js';

/** How a part ends: `graceful` lets it drain within its own deadline; `immediate` ends it now. */
export type StopMode = 'graceful' | 'immediate';

interface Entry {
  readonly name: string;
  readonly close: () => void | Promise<void>;
  readonly own: AbortController;
}

/**
 * The lifetimes of a running node on one disposal stack: parts are built in dependency order and
 * pushed as each one starts; they close newest first, so nothing closes while a part built on it
 * still runs. Each part gets a child AbortSignal that aborts when the stack stops at once (or the
 * parent signal aborts) and after the part itself has closed. Graceful and immediate stop are the
 * same walk: an immediate stop aborts the children first, so drains end at once, and joins a
 * graceful walk already running.
 *
 * A failed start unwinds the stack: exactly the parts already built are closed, in reverse.
 */
export class PartStack {
  readonly #entries: Entry[] = [];
  readonly #now = new AbortController();
  /** Aborted on an immediate stop or when the parent aborts. */
  readonly signal: AbortSignal;
  #closing: Promise<void> | undefined;

  constructor(parent?: AbortSignal) {
    this.signal = parent ? AbortSignal.any([parent, this.#now.signal]) : this.#now.signal;
    // The parent ending is an immediate stop; its outcome is seen through `stop()`.
    parent?.addEventListener('abort', () => void this.stop('immediate').catch(() => {}), { once: true });
  }

  /**
   * Starts one part with its child signal and pushes it with its close. A part that fails to start
   * is not pushed (it cleans up after itself); the caller unwinds the rest with `stop`.
   */
  async start<T>(name: string, build: (signal: AbortSignal) => T | Promise<T>, close: (part: T) => void | Promise<void>): Promise<T> {
    if (this.#closing) throw new SluiceError('SLUICE_ERR_CLOSED', `cannot start ${name}: the node is stopping`);
    const own = new AbortController();
    const part = await build(AbortSignal.any([this.signal, own.signal]));
    this.#entries.push({ name, close: () => close(part), own });
    return part;
  }

  /** Pushes a cleanup step that has nothing to start (an unsubscribe, a watcher's close). */
  defer(name: string, close: () => void | Promise<void>): void {
    this.#entries.push({ name, close, own: new AbortController() });
  }

  /** The parts running, oldest first (for status and tests). */
  get names(): string[] {
    return this.#entries.map((e) => e.name);
  }

  /**
   * Closes every part, newest first. Idempotent: a second call joins the first; `immediate`
   * during a graceful walk cuts the drains short. A part whose close fails does not stop the
   * walk; the first failure is thrown at the end.
   */
  stop(mode: StopMode = 'graceful'): Promise<void> {
    if (mode === 'immediate') this.#now.abort();
    this.#closing ??= this.#unwind();
    return this.#closing;
  }

  async #unwind(): Promise<void> {
    const failures: unknown[] = [];
    for (let e = this.#entries.pop(); e !== undefined; e = this.#entries.pop()) {
      try {
        await e.close();
      } catch (err) {
        failures.push(err);
      } finally {
        e.own.abort();
      }
    }
    if (failures.length > 0) throw failures[0];
  }
}

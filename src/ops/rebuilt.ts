/**
 * One part built from a slice of the config and rebuilt only when that slice changes: the
 * pattern behind every sink the ops layer swaps on reload (access log, flow log, conntrack,
 * metrics), so a reload that touches a route does not reopen a file or reset a counter.
 *
 * `apply(key, build)`: the same key keeps the running part; another key disposes of the old part
 * first (so a file or port is free again), then builds the new one; the key `off` leaves none.
 * Contract: calls are made one at a time (the root serialises reloads).
 */
export class Rebuilt<P> {
  #key = OFF;
  #part: P | undefined;

  constructor(private readonly dispose: (part: P) => void | Promise<void>) {}

  /** The running part, if any. */
  get current(): P | undefined {
    return this.#part;
  }

  /** True when the part was rebuilt (or removed); false when `key` matched the running one. */
  async apply(key: string, build: () => P | Promise<P>): Promise<boolean> {
    if (key === this.#key) return false;
    const old = this.#part;
    this.#part = undefined;
    this.#key = OFF;
    if (old !== undefined) await this.dispose(old);
    if (key === OFF) return true;
    this.#part = await build();
    this.#key = key;
    return true;
  }

  /** Disposes of the running part. */
  close(): Promise<boolean> {
    return this.apply(OFF, () => undefined as never);
  }
}

/** The key of "no part". */
export const OFF = 'off';

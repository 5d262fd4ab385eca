type Stop = (reason: 'shutdown') => void;

/** A tracked stream whose cancel came before it started. */
const CANCELLED: Stop = () => {};

/**
 * The agent's streams on data connections by stream id, so that the gateway's STREAM_RESET(cancel)
 * of one (it found the data connection dead before READY arrived and opened the stream
 * multiplexed: docs/tunnel-protocol.md, "Data connections") ends the local connection at once
 * instead of at the dead connection's timeout. A cancel that comes while the local dial is under
 * way is applied when the stream starts.
 */
export class DataStreamStops {
  /** Open data streams: their stop once started (undefined before; CANCELLED when a cancel came first). */
  readonly #open = new Map<number, Stop | undefined>();

  /** Registers stream `id`; its hooks: `started` with its stop, `ended` once it is over (every stream calls it). */
  track(id: number): { started(stop: Stop): void; ended(): void } {
    this.#open.set(id, undefined);
    return {
      started: (stop) => {
        if (this.#open.get(id) === CANCELLED) stop('shutdown');
        else if (this.#open.has(id)) this.#open.set(id, stop);
      },
      ended: () => void this.#open.delete(id),
    };
  }

  /** STREAM_RESET for stream `id`: true when it is an open data stream (stopped now, or when it starts). */
  cancel(id: number): boolean {
    if (!this.#open.has(id)) return false;
    const stop = this.#open.get(id);
    if (stop === undefined) this.#open.set(id, CANCELLED);
    else if (stop !== CANCELLED) stop('shutdown');
    return true;
  }

  get size(): number {
    return this.#open.size;
  }
}

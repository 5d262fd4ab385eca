/**
 * A fixed-capacity ring: pushing onto a full ring overwrites the oldest item. Memory is bounded by
 * `capacity` items whatever the event rate.
 */
export class Ring<T> {
  readonly #items: (T | undefined)[];
  #next = 0;
  #size = 0;

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError('capacity must be a positive integer');
    this.#items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
  }

  /** Newest first, at most `limit` items. */
  newest(limit = this.#size): T[] {
    const n = Math.min(limit, this.#size);
    const out: T[] = [];
    for (let i = 1; i <= n; i++) out.push(this.#items[(this.#next - i + this.capacity) % this.capacity]!);
    return out;
  }
}

/** An object that knows its own place in a FlowSlots (-1: in none). */
export interface Slotted {
  slot: number;
}

/**
 * The live flows of a listener, in an array where each flow keeps its own index: `add` and
 * `delete` are O(1) (the last flow moves into the freed place) and allocate nothing.
 *
 * Why not a `Set`: a connection-rate load adds and deletes one flow per connection, and V8
 * rebuilds a `Set`'s hash table every few dozen of those; the table it leaves keeps its entries
 * and a link to the next one. Once a table has lived through a young-generation collection it
 * is an old object that nothing marks dead until a full collection, and its chain of successors
 * keeps every flow they ever listed (with their connections and closures) alive through each
 * young collection: about a third of what a short connection allocated was copied and then
 * promoted (docs/datapath.md, "Where Sluice spends more than nginx"). An array's freed places are
 * cleared, so a flow ends unreferenced.
 */
export class FlowSlots<T extends Slotted> implements Iterable<T> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  add(flow: T): void {
    flow.slot = this.#items.length;
    this.#items.push(flow);
  }

  /** Removes `flow`; false when it was not here. */
  delete(flow: T): boolean {
    const items = this.#items;
    const i = flow.slot;
    if (i < 0 || items[i] !== flow) return false;
    const last = items.pop()!;
    if (last !== flow) {
      items[i] = last;
      last.slot = i;
    }
    flow.slot = -1;
    return true;
  }

  has(flow: T): boolean {
    return flow.slot >= 0 && this.#items[flow.slot] === flow;
  }

  /** A copy of the flows at this moment: ending flows while iterating skips none. */
  [Symbol.iterator](): Iterator<T> {
    return this.#items.slice()[Symbol.iterator]();
  }
}

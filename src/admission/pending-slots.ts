export interface PendingSlotsOptions {
  /** Slots in total. */
  readonly max: number;
  /** Slots one source may hold. */
  readonly maxPerSource: number;
}

export interface PendingSlot {
  readonly source: string;
  /** Marks progress (a later stage only): less progressed entries are evicted first. */
  advance(stage: number): void;
  /** Frees the slot; idempotent. */
  release(): void;
}

export type AdmitOutcome =
  | { readonly ok: true; readonly slot: PendingSlot; readonly evicted: boolean }
  | { readonly ok: false; readonly reason: 'per-source' | 'full' };

class Entry implements PendingSlot {
  stage = 0;
  released = false;
  constructor(
    private readonly table: PendingSlots,
    readonly source: string,
    readonly preferred: boolean,
    readonly evict: () => void,
  ) {}

  advance(stage: number): void {
    if (this.released || stage <= this.stage) return;
    this.stage = stage;
    this.table.changed();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.table.forget(this);
  }
}

/**
 * Bounded room for connections that have not proved anything yet (a TLS handshake before AUTH, a
 * PROXY header not yet read). Caps alone lose to slow peers from many addresses: each stays under
 * the per-source cap, together they hold every slot until their deadline, and they take each freed
 * slot back at once, so a legitimate newcomer is refused almost every time.
 *
 * When the table is full a newcomer may take the slot of a pending entry instead of being refused:
 * - a newcomer from a *preferred* source (one that authenticated before) may evict any entry of a
 *   source that is not preferred;
 * - any other newcomer may evict only an entry of a source that holds at least two more slots than
 *   the newcomer's source does (fair share per source), so evictions always move the table towards
 *   one-slot-per-source and never feed a loop in which peers evict each other.
 * The victim is taken from the source holding the most slots, then the least progressed (lowest
 * stage: a connection whose TLS is done outranks one still in its handshake), then the oldest.
 * Preferred entries are never evicted. Refusal and eviction are O(1) while nothing changed since
 * the last look; a change costs one scan of the table, at most `max` entries.
 */
export class PendingSlots {
  /** Insertion order is age order. */
  readonly #entries = new Set<Entry>();
  readonly #perSource = new Map<string, number>();
  /** The entry a newcomer would evict (most slots, least progress, oldest), or null; undefined = unknown. */
  #victim: Entry | null | undefined = null;
  #evictions = 0;

  constructor(private opts: PendingSlotsOptions) {}

  get size(): number {
    return this.#entries.size;
  }

  /** Entries evicted so far. */
  get evictions(): number {
    return this.#evictions;
  }

  /** Slots `source` holds now. */
  held(source: string): number {
    return this.#perSource.get(source) ?? 0;
  }

  /** New caps apply to newcomers; entries above them stay until they end. */
  update(opts: PendingSlotsOptions): void {
    this.opts = opts;
  }

  /**
   * Takes a slot for `source`, evicting one when the table is full and the rules above allow it.
   * `evict` is called (once, synchronously) if this entry is later evicted: it must end the
   * connection; the slot is already free when it runs.
   */
  admit(source: string, preferred: boolean, evict: () => void): AdmitOutcome {
    const held = this.held(source);
    if (held >= this.opts.maxPerSource) return { ok: false, reason: 'per-source' };
    let evicted = false;
    if (this.#entries.size >= this.opts.max) {
      const v = this.#findVictim();
      if (!v || (!preferred && this.held(v.source) < held + 2)) return { ok: false, reason: 'full' };
      v.release();
      this.#evictions++;
      evicted = true;
      v.evict();
    }
    const e = new Entry(this, source, preferred, evict);
    this.#entries.add(e);
    this.#perSource.set(source, this.held(source) + 1);
    this.changed();
    return { ok: true, slot: e, evicted };
  }

  /** @internal */
  changed(): void {
    this.#victim = undefined;
  }

  /** @internal */
  forget(e: Entry): void {
    if (!this.#entries.delete(e)) return;
    const n = this.held(e.source) - 1;
    if (n <= 0) this.#perSource.delete(e.source);
    else this.#perSource.set(e.source, n);
    this.changed();
  }

  #findVictim(): Entry | null {
    if (this.#victim !== undefined) return this.#victim;
    let best: Entry | null = null;
    let bestHeld = 0;
    for (const e of this.#entries) {
      if (e.preferred) continue;
      const h = this.held(e.source);
      // Entries come oldest first, so a later one wins only when strictly better.
      if (!best || h > bestHeld || (h === bestHeld && e.stage < best.stage)) {
        best = e;
        bestHeld = h;
      }
    }
    this.#victim = best;
    return best;
  }
}

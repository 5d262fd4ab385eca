import { LRUCache } from 'lru-cache';
import type { Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { Sink, SluiceEvent } from '../observe/events.js';
import type { SessionInfo } from '../listen/route.js';
import { sourceKey } from '../admission/source-key.js';

/** How many sources are remembered; the least recently seen is forgotten first. */
export const SOURCES_REMEMBERED = 4096;
/** The two windows, each a ring of slots: 6 x 10 s (the last minute) and 10 x 1 min (the last 10 minutes). */
const WINDOWS = { '1m': { slots: 6, slotMs: 10_000 }, '10m': { slots: 10, slotMs: 60_000 } } as const;
export type SourceWindow = keyof typeof WINDOWS;
export const SOURCE_ORDERS = ['sessions', 'bytes', 'rejections'] as const;
export type SourceOrder = (typeof SOURCE_ORDERS)[number];
const SESSIONS = 0;
const BYTES = 1;
const REJECTIONS = 2;

/** Counts of one window: sessions started, bytes of sessions ended, rejections. */
export interface WindowCounts {
  sessions: number;
  bytes: number;
  rejections: number;
}

export interface SourceView {
  readonly source: string;
  /** Sessions and connections of this source open now, and their bytes so far (both directions). */
  readonly active: number;
  readonly liveBytes: number;
  readonly lastSeen: string;
  readonly last1m: WindowCounts;
  readonly last10m: WindowCounts;
  /** What the ban list says about this source; null when it is not banned or bans do not run. */
  readonly ban: unknown;
}

/** A ring of slots of three counters; a slot is reset when time comes round to it again. */
class SlotRing {
  readonly #counts: Float64Array;
  readonly #stamps: Float64Array;

  constructor(private readonly slots: number) {
    this.#counts = new Float64Array(slots * 3);
    this.#stamps = new Float64Array(slots).fill(-1);
  }

  add(slot: number, kind: number, n: number): void {
    const i = slot % this.slots;
    if (this.#stamps[i] !== slot) {
      this.#stamps[i] = slot;
      this.#counts.fill(0, i * 3, i * 3 + 3);
    }
    this.#counts[i * 3 + kind]! += n;
  }

  sum(slot: number): WindowCounts {
    const out = { sessions: 0, bytes: 0, rejections: 0 };
    for (let i = 0; i < this.slots; i++) {
      const s = this.#stamps[i]!;
      if (s < 0 || s <= slot - this.slots || s > slot) continue;
      out.sessions += this.#counts[i * 3 + SESSIONS]!;
      out.bytes += this.#counts[i * 3 + BYTES]!;
      out.rejections += this.#counts[i * 3 + REJECTIONS]!;
    }
    return out;
  }
}

interface Entry {
  readonly short: SlotRing;
  readonly long: SlotRing;
  active: number;
  lastSeen: number;
}

/**
 * Who is connected, for GET /api/sources: per source key (the client address, or its IPv6 /64 by
 * default), sessions started, bytes of sessions that ended and rejections over the last 1 and 10
 * minutes, fed from the event stream. Memory is bounded: at most SOURCES_REMEMBERED sources, each
 * 16 slots of three numbers (~500 bytes); a forgotten source starts again from zero. Windows are
 * slot-granular: "1m" covers the last 50-60 s, "10m" the last 9-10 min.
 */
export class SourceActivity {
  readonly #entries = new LRUCache<string, Entry>({ max: SOURCES_REMEMBERED });

  constructor(
    private readonly clock: Clock,
    /** The ban state of a source key (filled when bans run); undefined = not banned / no bans. */
    private readonly banState: (source: string) => unknown = () => undefined,
    private readonly keyOf: (client: Pick<Endpoint, 'address' | 'family'>) => string = (c) => sourceKey(c),
  ) {}

  readonly sink: Sink = (e: SluiceEvent) => {
    if (e.type === 'session-started') {
      const en = this.#touch(e.flow.client);
      en.active++;
      this.#add(en, SESSIONS, 1);
    } else if (e.type === 'session-ended') {
      const en = this.#touch(e.flow.client);
      en.active = Math.max(0, en.active - 1);
      this.#add(en, BYTES, e.counters.bytesFromClient + e.counters.bytesToClient);
    } else if (e.type === 'session-rejected') {
      this.#add(this.#touch(e.client), REJECTIONS, 1);
    }
  };

  /** The top `limit` sources by `order` over `window`, with live sessions' bytes from `live`. */
  top(window: SourceWindow, order: SourceOrder, limit: number, live: readonly SessionInfo[] = []): { window: SourceWindow; by: SourceOrder; tracked: number; sources: SourceView[] } {
    const now = this.clock.now();
    const shortSlot = Math.floor(now / WINDOWS['1m'].slotMs);
    const longSlot = Math.floor(now / WINDOWS['10m'].slotMs);
    const liveBytes = new Map<string, number>();
    for (const s of live) {
      const k = this.keyOf(s.client);
      liveBytes.set(k, (liveBytes.get(k) ?? 0) + s.bytesFromClient + s.bytesToClient);
    }
    const wall = this.clock.wallNow();
    const rows: SourceView[] = [];
    for (const [source, en] of this.#entries.entries()) {
      rows.push({
        source,
        active: en.active,
        liveBytes: liveBytes.get(source) ?? 0,
        lastSeen: new Date(wall - (now - en.lastSeen)).toISOString(),
        last1m: en.short.sum(shortSlot),
        last10m: en.long.sum(longSlot),
        ban: this.banState(source) ?? null,
      });
    }
    const counts = (r: SourceView) => (window === '1m' ? r.last1m : r.last10m);
    const score = (r: SourceView) => counts(r)[order] + (order === 'bytes' ? r.liveBytes : 0);
    const seen = (r: SourceView) => r.active > 0 || counts(r).sessions + counts(r).bytes + counts(r).rejections > 0;
    rows.sort((a, b) => score(b) - score(a) || b.active - a.active || a.source.localeCompare(b.source));
    return { window, by: order, tracked: this.#entries.size, sources: rows.filter(seen).slice(0, limit) };
  }

  #touch(client: Pick<Endpoint, 'address' | 'family'>): Entry {
    const key = this.keyOf(client);
    let en = this.#entries.get(key);
    if (en === undefined) {
      en = { short: new SlotRing(WINDOWS['1m'].slots), long: new SlotRing(WINDOWS['10m'].slots), active: 0, lastSeen: 0 };
      this.#entries.set(key, en);
    }
    en.lastSeen = this.clock.now();
    return en;
  }

  #add(en: Entry, kind: number, n: number): void {
    const now = this.clock.now();
    en.short.add(Math.floor(now / WINDOWS['1m'].slotMs), kind, n);
    en.long.add(Math.floor(now / WINDOWS['10m'].slotMs), kind, n);
  }
}

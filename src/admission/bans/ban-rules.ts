import { LRUCache } from 'lru-cache';
import type { Endpoint } from '../../core/address.js';
import type { Clock } from '../../core/clock.js';
import { formatDurationMs } from '../../core/duration.js';
import type { BanInfo, EventType, SluiceEvent } from '../../observe/events.js';
import { sourceKey } from '../source-key.js';
import type { BanStore } from './ban-store.js';
import { ByteMeter, ByteWindow, type MeteredFlow } from './byte-meter.js';
import type { BanRule, BansSettings } from '../../config/bans-settings.js';

/** Timestamps (monotonic ms) of one source's last `count` events under one rule: a ring. */
interface Window {
  readonly times: Float64Array;
  next: number;
  filled: number;
}

export interface BanRulesDeps {
  readonly clock: Clock;
  readonly store: BanStore;
  /** Names of the rules watching route `route` (its `bans`, else `bans.default`). */
  readonly rulesOf: (route: string) => readonly string[] | undefined;
  /** Names of the rules watching a gateway's agent endpoint (failed agent authentications). */
  readonly agentEndpointRules: () => readonly string[] | undefined;
  /** An observe-mode rule's would-be ban. */
  readonly wouldBan: (ban: BanInfo) => void;
}

/**
 * The behaviour rules of `bans.rules` (docs/bans.md), fed from the event stream: each admitted
 * session (`session-started`) and each refusal (`session-rejected`, except observe-only ones and
 * refusals by a ban; `auth-failed` on a gateway) counts for the source under every rule watching
 * its route. When a source reaches `count` events within `window`, or moves more than `bytes`
 * within a `bytesPer` window (ByteMeter: ended sessions' counters, and live ones' read by
 * `sampleBytes`), it is banned for the rule's duration, multiplied by `escalate` for each earlier
 * offence under that rule, up to `maxBan`.
 *
 * Memory is bounded: counts and offence histories are LRU maps of at most `maxTracked` entries
 * each; a source forgotten there starts again from zero. A count is a ring of the last `count`
 * timestamps, so the window is exact (sliding), not bucketed.
 */
export class BanRules {
  #rules = new Map<string, BanRule>();
  #windows: LRUCache<string, Window>;
  #bytes: LRUCache<string, ByteWindow>;
  readonly #meter = new ByteMeter((route, client, bytes) => this.#countBytes(route, client, bytes));
  #meterBytes = false;
  #offences: LRUCache<string, number>;
  #maxTracked = 0;

  constructor(private readonly deps: BanRulesDeps) {
    this.#windows = new LRUCache({ max: 1 });
    this.#bytes = new LRUCache({ max: 1 });
    this.#offences = new LRUCache({ max: 1 });
  }

  /** Takes the rules of a (re)loaded config; counts of rules that keep their name and condition survive. */
  apply(settings: BansSettings | undefined): void {
    const next = new Map((settings?.rules ?? []).map((r) => [r.name, r]));
    const max = settings?.maxTracked ?? 1;
    if (max !== this.#maxTracked) {
      this.#maxTracked = max;
      this.#windows = new LRUCache({ max });
      this.#bytes = new LRUCache({ max });
      this.#offences = new LRUCache({ max });
    }
    for (const [name, old] of this.#rules) {
      const now = next.get(name);
      if (!now || JSON.stringify([now.newSessionsPer, now.rejectionsPer, now.bytesPer]) !== JSON.stringify([old.newSessionsPer, old.rejectionsPer, old.bytesPer])) {
        for (const k of [...this.#windows.keys()]) if (k.startsWith(`${name}\0`)) this.#windows.delete(k);
        for (const k of [...this.#bytes.keys()]) if (k.startsWith(`${name}\0`)) this.#bytes.delete(k);
      }
    }
    this.#rules = next;
    this.#meterBytes = [...next.values()].some((r) => r.bytesPer !== undefined);
    if (!this.#meterBytes) this.#meter.clear();
  }

  /** Whether some rule has a `bytesPer` condition (then live sessions are sampled). */
  get metersBytes(): boolean {
    return this.#meterBytes;
  }

  /** Reads live sessions' counters for `bytesPer` rules (called every BYTE_SAMPLE_MS while some rule has one). */
  sampleBytes(flows: Iterable<MeteredFlow>): void {
    if (this.#meterBytes) this.#meter.sample(flows);
  }

  /** The types the sink reads: none while no rule is configured (EventStream.wants). */
  readonly interest = (type: EventType): boolean => this.#rules.size > 0 && (type === 'session-started' || type === 'session-rejected' || type === 'auth-failed' || type === 'session-ended');

  /** The event-stream sink. Cheap when no rule applies to the event's route. */
  readonly sink = (e: SluiceEvent): void => {
    if (this.#rules.size === 0) return;
    if (e.type === 'session-started') this.#count(this.deps.rulesOf(e.flow.route), e.flow.client, 'sessions');
    else if (e.type === 'session-rejected' && !e.observeOnly && e.reason !== 'banned' && e.reason !== 'no-healthy-upstream') this.#count(this.deps.rulesOf(e.route), e.client, 'rejections');
    else if (e.type === 'auth-failed') this.#count(this.deps.agentEndpointRules(), e.client, 'rejections');
    else if (e.type === 'session-ended' && this.#meterBytes) this.#meter.ended(e.flow, e.counters);
  };

  #count(names: readonly string[] | undefined, client: Endpoint, kind: 'sessions' | 'rejections'): void {
    if (!names || names.length === 0) return;
    const now = this.deps.clock.now();
    for (const name of names) {
      const rule = this.#rules.get(name);
      const cond = rule && (kind === 'sessions' ? rule.newSessionsPer : rule.rejectionsPer);
      if (!rule || !cond) continue;
      const key = sourceKey(client, rule.scope);
      const wk = `${name}\0${kind}\0${key}`;
      let w = this.#windows.get(wk);
      if (!w || w.times.length !== cond.count) {
        w = { times: new Float64Array(cond.count), next: 0, filled: 0 };
        this.#windows.set(wk, w);
      }
      w.times[w.next] = now;
      w.next = (w.next + 1) % cond.count;
      w.filled = Math.min(cond.count, w.filled + 1);
      // Full ring: the slot `next` points at holds the oldest of the last `count` events.
      if (w.filled < cond.count || now - w.times[w.next % cond.count]! >= cond.windowMs) continue;
      this.#windows.delete(wk);
      this.#offend(rule, `${cond.count} ${kind === 'sessions' ? 'new sessions' : 'rejections'} within ${formatDurationMs(cond.windowMs)}`, client, key);
    }
  }

  #countBytes(route: string, client: Endpoint, bytes: number): void {
    const names = this.deps.rulesOf(route);
    if (!names || names.length === 0) return;
    const now = this.deps.clock.now();
    for (const name of names) {
      const rule = this.#rules.get(name);
      const cond = rule?.bytesPer;
      if (!rule || !cond) continue;
      const key = sourceKey(client, rule.scope);
      const wk = `${name}\0${key}`;
      let w = this.#bytes.get(wk);
      if (!w || w.windowMs !== cond.windowMs) {
        w = new ByteWindow(cond.windowMs);
        this.#bytes.set(wk, w);
      }
      if (w.add(now, bytes) <= cond.bytes) continue;
      this.#bytes.delete(wk);
      this.#offend(rule, `more than ${cond.bytes} bytes within ${formatDurationMs(cond.windowMs)}`, client, key);
    }
  }

  #offend(rule: BanRule, what: string, client: Endpoint, target: string): void {
    const { store } = this.deps;
    if (store.allowed(client.address) || store.get(target)) return;
    const hk = `${rule.name}\0${target}`;
    const before = this.#offences.get(hk) ?? 0;
    const durationMs = Math.min(rule.maxBanMs, rule.banMs * rule.escalate ** before);
    const reason = `${what}${before > 0 ? ` (offence ${before + 1})` : ''}`;
    const source = `rule:${rule.name}`;
    if (rule.mode === 'observe') {
      const at = this.deps.clock.wallNow();
      this.deps.wouldBan({ target, source, reason, createdAt: at, expiresAt: at + durationMs });
      return;
    }
    this.#offences.set(hk, before + 1);
    store.add({ target, source, reason, durationMs });
  }
}

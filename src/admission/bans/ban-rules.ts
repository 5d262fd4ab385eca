import { LRUCache } from 'lru-cache';
import type { Endpoint } from '../../core/address.js';
import type { Clock } from '../../core/clock.js';
import { formatDurationMs } from '../../core/duration.js';
import type { BanInfo, SluiceEvent } from '../../observe/events.js';
import { sourceKey } from '../source-key.js';
import type { BanStore } from './ban-store.js';
import type { BanCondition, BanRule, BansSettings } from './settings.js';

type Kind = 'sessions' | 'rejections';

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
  /** An observe-mode rule's would-be ban. */
  readonly wouldBan: (ban: BanInfo) => void;
}

/**
 * The behaviour rules of `bans.rules` (docs/bans.md), fed from the event stream: each admitted
 * session (`session-started`) and each refusal (`session-rejected`, except observe-only ones and
 * refusals by a ban) counts for the source under every rule watching its route. When a source
 * reaches `count` events within `window`, it is banned for the rule's duration, multiplied by
 * `escalate` for each earlier offence under that rule, up to `maxBan`.
 *
 * Memory is bounded: counts and offence histories are LRU maps of at most `maxTracked` entries
 * each; a source forgotten there starts again from zero. A count is a ring of the last `count`
 * timestamps, so the window is exact (sliding), not bucketed.
 */
export class BanRules {
  #rules = new Map<string, BanRule>();
  #windows: LRUCache<string, Window>;
  #offences: LRUCache<string, number>;
  #maxTracked = 0;

  constructor(private readonly deps: BanRulesDeps) {
    this.#windows = new LRUCache({ max: 1 });
    this.#offences = new LRUCache({ max: 1 });
  }

  /** Takes the rules of a (re)loaded config; counts of rules that keep their name and condition survive. */
  apply(settings: BansSettings | undefined): void {
    const next = new Map((settings?.rules ?? []).map((r) => [r.name, r]));
    const max = settings?.maxTracked ?? 1;
    if (max !== this.#maxTracked) {
      this.#maxTracked = max;
      this.#windows = new LRUCache({ max });
      this.#offences = new LRUCache({ max });
    }
    for (const [name, old] of this.#rules) {
      const now = next.get(name);
      if (!now || JSON.stringify([now.newSessionsPer, now.rejectionsPer]) !== JSON.stringify([old.newSessionsPer, old.rejectionsPer])) {
        for (const k of [...this.#windows.keys()]) if (k.startsWith(`${name}\0`)) this.#windows.delete(k);
      }
    }
    this.#rules = next;
  }

  /** The event-stream sink. Cheap when no rule applies to the event's route. */
  readonly sink = (e: SluiceEvent): void => {
    if (this.#rules.size === 0) return;
    if (e.type === 'session-started') this.#count(e.flow.route, e.flow.client, 'sessions');
    else if (e.type === 'session-rejected' && !e.observeOnly && e.reason !== 'banned') this.#count(e.route, e.client, 'rejections');
  };

  #count(route: string, client: Endpoint, kind: Kind): void {
    const names = this.deps.rulesOf(route);
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
      this.#offend(rule, cond, kind, client, key);
    }
  }

  #offend(rule: BanRule, cond: BanCondition, kind: Kind, client: Endpoint, target: string): void {
    const { store } = this.deps;
    if (store.allowed(client.address) || store.get(target)) return;
    const hk = `${rule.name}\0${target}`;
    const before = this.#offences.get(hk) ?? 0;
    const durationMs = Math.min(rule.maxBanMs, rule.banMs * rule.escalate ** before);
    const what = kind === 'sessions' ? 'new sessions' : 'rejections';
    const reason = `${cond.count} ${what} within ${formatDurationMs(cond.windowMs)}${before > 0 ? ` (offence ${before + 1})` : ''}`;
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

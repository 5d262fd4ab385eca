import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Clock, Timer } from '../core/clock.js';
import type { Endpoint } from '../core/address.js';
import type { FleetSettings } from '../config/fleet-settings.js';
import type { AdmitVerdict, Admitter } from '../admission/admitter.js';
import { sourceKey } from '../admission/source-key.js';
import type { FleetLink } from './fleet-link.js';

/** How many sources' fleet verdicts (blocked, full) are remembered. */
const REMEMBERED_SOURCES = 65_536;
/** The channel carrying fleet-wide limit verdicts between gateways. */
export const LIMITS_CHANNEL = 'limits';
/** The hash field holding a cap key's version (never a gateway name: names cannot start with #). */
const VERSION_FIELD = '#v';

type LimitMessage = { t: 'block'; s: string; ms: number } | { t: 'full' | 'open'; s: string; v: number };

export interface FleetLimitsDeps {
  readonly clock: Clock;
  /** Gateways alive in the fleet view now (counts of others are ignored). */
  readonly alive: () => ReadonlySet<string>;
}

/**
 * Per-source limits across the fleet (docs/fleet.md, "Fleet-wide limits"). The accept path is
 * synchronous, so admission answers from verdicts held in memory, and Redis is told afterwards:
 *
 * - Rate: every admitted new session consumes one point of the source's fixed window in Redis
 *   (rate-limiter-flexible's RateLimiterRedis; its in-memory insurance limiter counts for this
 *   gateway alone while Redis is down under `onRedisDown: local`). The gateway whose consume is
 *   refused blocks the source until the window ends and publishes the block, so every gateway
 *   refuses it within one pub/sub hop.
 * - Cap: each gateway keeps its live session count per source in the hash `cap:<source>`
 *   (field = gateway name; MULTI so the total read is the one the increment made). The gateway
 *   whose change makes the fleet total reach the cap publishes `full`, the one bringing it below
 *   publishes `open`; every gateway refuses new sessions of a full source.
 *
 * Approximate by design: sessions admitted on other gateways during one Redis round trip (plus,
 * for the cap, while their upstream dial is still open) are not yet counted.
 */
export class FleetLimits {
  readonly #limiter: RateLimiterAbstract | undefined;
  /** The in-memory limiter used while Redis is down (`local`), and the sources it counted (freed on close). */
  readonly #insurance: RateLimiterMemory | undefined;
  readonly #insured = new Set<string>();
  /** Source -> monotonic ms until which new sessions are refused for the fleet rate. */
  readonly #blocked = new LRUCache<string, number>({ max: REMEMBERED_SOURCES });
  /** Source -> points left in its window at the last answer, until when that holds, and consumes not yet answered. */
  readonly #points = new LRUCache<string, { left: number; until: number; inFlight: number }>({ max: REMEMBERED_SOURCES });
  /** Source -> version of the last cap verdict seen, and whether it is full. */
  readonly #capState = new LRUCache<string, { v: number; full: boolean }>({ max: REMEMBERED_SOURCES });
  /** Live sessions per source on this gateway, and the source of each live flow. */
  readonly #local = new Map<string, number>();
  readonly #flows = new Map<number, string>();
  readonly #unsubscribe: () => void;
  readonly #offStatus: () => void;
  #refresher: Timer | undefined;
  readonly counters = { rateRefused: 0, capRefused: 0, unavailableRefused: 0, redisErrors: 0 };

  constructor(
    private readonly link: FleetLink,
    private readonly settings: FleetSettings,
    private readonly deps: FleetLimitsDeps,
  ) {
    const { ratePerSource: points, rateWindowMs } = settings.limits;
    if (points > 0) {
      const duration = rateWindowMs / 1000;
      if (settings.onRedisDown === 'local') this.#insurance = new RateLimiterMemory({ points, duration });
      this.#limiter = new RateLimiterRedis({
        storeClient: link.commands,
        keyPrefix: link.key('rate'),
        points,
        duration,
        rejectIfRedisNotReady: true,
        ...(this.#insurance ? { insuranceLimiter: this.#insurance } : {}),
      });
    }
    this.#unsubscribe = link.subscribe(LIMITS_CHANNEL, (m) => this.#onMessage(m));
    this.#offStatus = link.onStatus((s) => {
      if (s === 'ok') void this.refresh(true);
    });
    if (settings.limits.maxPerSource > 0) this.#refresher = deps.clock.setInterval(() => void this.refresh(false), Math.max(100, Math.floor(settings.ttlMs / 3)));
  }

  get enabled(): boolean {
    return this.#limiter !== undefined || this.settings.limits.maxPerSource > 0;
  }

  /** Sources this gateway has live sessions of, the fleet verdicts held now, and rate consumes not yet answered (views, tests). */
  snapshot(): { localSources: number; blocked: number; full: number; pending: number } {
    const now = this.deps.clock.now();
    let blocked = 0;
    let full = 0;
    let pending = 0;
    for (const until of this.#blocked.values()) if (until > now) blocked++;
    for (const s of this.#capState.values()) if (s.full) full++;
    for (const p of this.#points.values()) pending += p.inFlight;
    return { localSources: this.#local.size, blocked, full, pending };
  }

  /**
   * The admission step (new sessions only: the root wraps it so re-judging live sessions skips it).
   * Refuses a source blocked or full fleet-wide, or, under `deny` while Redis is down, everyone.
   */
  readonly admitter: Admitter = (client) => {
    if (!this.enabled) return undefined;
    const source = sourceKey(client);
    const cap = this.settings.limits.maxPerSource;
    const down = this.link.status !== 'ok';
    if (down && this.settings.onRedisDown === 'deny') return this.#refuse('fleet-unavailable', `fleet Redis unreachable (onRedisDown: deny)`);
    if (cap > 0 && (this.#local.get(source) ?? 0) >= cap) return this.#refuse('fleet-source-sessions', `${source} has ${cap} sessions on this gateway (fleet cap ${cap})`);
    if (cap > 0 && !down && this.#capState.get(source)?.full) return this.#refuse('fleet-source-sessions', `${source} has ${cap} sessions across the fleet`);
    const until = this.#blocked.get(source);
    if (until !== undefined && until > this.deps.clock.now()) return this.#refuse('fleet-source-rate', `${source} is over ${this.settings.limits.ratePerSource} new sessions per ${this.settings.limits.rateWindowMs}ms across the fleet`);
    if (this.#limiter) {
      // Sessions admitted while earlier consumes are unanswered spend the points left at the last
      // answer (all of them before any answer): a burst on one gateway stops at the limit.
      const now = this.deps.clock.now();
      let p = this.#points.get(source);
      if (!p || p.until <= now) p = { left: this.settings.limits.ratePerSource, until: Infinity, inFlight: p?.inFlight ?? 0 };
      if (p.inFlight >= p.left) return this.#refuse('fleet-source-rate', `${source} is over ${this.settings.limits.ratePerSource} new sessions per ${this.settings.limits.rateWindowMs}ms across the fleet`);
      p.inFlight++;
      this.#points.set(source, p);
      if (this.#insurance && down && this.#insured.size < REMEMBERED_SOURCES) this.#insured.add(source);
      // The consume that takes the last point blocks at once: the next session would be over.
      this.#limiter.consume(source).then(
        (res) => {
          this.#answered(source, res.remainingPoints, res.msBeforeNext);
          if (res.remainingPoints <= 0) this.#block(source, Math.max(1, res.msBeforeNext), true);
        },
        (res: unknown) => {
          if (res instanceof RateLimiterRes) {
            this.#answered(source, 0, res.msBeforeNext);
            this.#block(source, Math.max(1, res.msBeforeNext), true);
          } else {
            this.#answered(source, undefined, 0);
            this.counters.redisErrors++;
          }
        },
      );
    }
    return undefined;
  };

  /** One consume of `source` was answered: `left` points remain for `ms` (undefined: unknown, e.g. Redis failed). */
  #answered(source: string, left: number | undefined, ms: number): void {
    const p = this.#points.get(source);
    if (!p) return;
    p.inFlight = Math.max(0, p.inFlight - 1);
    if (left !== undefined) {
      // Later answers supersede earlier ones; the points left count the consumes still in flight as not yet spent.
      p.left = Math.max(0, left);
      p.until = this.deps.clock.now() + Math.max(1, ms);
    }
  }

  #refuse(reason: AdmitVerdict['reason'], detail: string): AdmitVerdict {
    if (reason === 'fleet-source-rate') this.counters.rateRefused++;
    else if (reason === 'fleet-source-sessions') this.counters.capRefused++;
    else this.counters.unavailableRefused++;
    return { reason, detail };
  }

  #block(source: string, ms: number, announce: boolean): void {
    const until = this.deps.clock.now() + ms;
    const held = this.#blocked.get(source);
    if (held !== undefined && held >= until) return;
    this.#blocked.set(source, until);
    if (announce) this.link.publish(LIMITS_CHANNEL, JSON.stringify({ t: 'block', s: source, ms } satisfies LimitMessage));
  }

  /** A session of `client` started on this gateway (flow ids are unique per process). */
  started(flowId: number, client: Pick<Endpoint, 'address' | 'family'>): void {
    if (this.settings.limits.maxPerSource <= 0) return;
    const source = sourceKey(client);
    this.#flows.set(flowId, source);
    this.#local.set(source, (this.#local.get(source) ?? 0) + 1);
    void this.#count(source, 1);
  }

  ended(flowId: number): void {
    const source = this.#flows.get(flowId);
    if (source === undefined) return;
    this.#flows.delete(flowId);
    const n = (this.#local.get(source) ?? 1) - 1;
    if (n <= 0) this.#local.delete(source);
    else this.#local.set(source, n);
    void this.#count(source, -1);
  }

  /** Applies `delta` to this gateway's count of `source` in Redis and announces a full/open change. */
  async #count(source: string, delta: number): Promise<void> {
    if (this.link.status !== 'ok') return;
    const key = this.link.key('cap', source);
    try {
      const res = await this.link.commands
        .multi()
        .hincrby(key, this.settings.name, delta)
        .hincrby(key, VERSION_FIELD, 1)
        .hgetall(key)
        .pexpire(key, this.settings.ttlMs)
        .exec();
      if (!res || res.some(([err]) => err)) throw new Error('cap update failed');
      this.#judge(source, res[2]![1] as Record<string, string>, Number(res[1]![1]));
    } catch {
      this.counters.redisErrors++;
    }
  }

  /** Fleet total of a cap hash (alive gateways only) -> publish full/open when it crosses the cap. */
  #judge(source: string, hash: Record<string, string>, v: number): void {
    const alive = this.deps.alive();
    let total = 0;
    for (const [gw, n] of Object.entries(hash)) if (gw !== VERSION_FIELD && (gw === this.settings.name || alive.has(gw))) total += Math.max(0, Number(n) || 0);
    const full = total >= this.settings.limits.maxPerSource;
    const was = this.#capState.get(source)?.full ?? false;
    this.#applyCap(source, full, v);
    if (full !== was) this.link.publish(LIMITS_CHANNEL, JSON.stringify({ t: full ? 'full' : 'open', s: source, v } satisfies LimitMessage));
  }

  #applyCap(source: string, full: boolean, v: number): void {
    const held = this.#capState.get(source);
    if (held && held.v > v) return;
    if (!full && !held) return;
    this.#capState.set(source, { v, full });
  }

  #onMessage(text: string): void {
    let m: LimitMessage;
    try {
      m = JSON.parse(text) as LimitMessage;
    } catch {
      return;
    }
    if (typeof m.s !== 'string') return;
    if (m.t === 'block' && typeof m.ms === 'number') this.#block(m.s, Math.min(m.ms, this.settings.limits.rateWindowMs), false);
    else if ((m.t === 'full' || m.t === 'open') && typeof m.v === 'number') this.#applyCap(m.s, m.t === 'full', m.v);
  }

  /**
   * Writes this gateway's counts again (keeps their keys alive; after Redis came back, possibly
   * empty, puts them back) and re-judges each source. `reset` forgets cap verdicts first.
   */
  async refresh(reset: boolean): Promise<void> {
    if (this.settings.limits.maxPerSource <= 0 || this.link.status !== 'ok') return;
    if (reset) this.#capState.clear();
    const sources = [...this.#local];
    if (sources.length === 0) return;
    const p = this.link.commands.pipeline();
    for (const [source, n] of sources) {
      const key = this.link.key('cap', source);
      p.hset(key, this.settings.name, n).hincrby(key, VERSION_FIELD, 1).hgetall(key).pexpire(key, this.settings.ttlMs);
    }
    try {
      const res = (await p.exec()) ?? [];
      sources.forEach(([source], i) => {
        const v = res[i * 4 + 1];
        const h = res[i * 4 + 2];
        if (v && h && !v[0] && !h[0]) this.#judge(source, h[1] as Record<string, string>, Number(v[1]));
      });
    } catch {
      this.counters.redisErrors++;
    }
  }

  close(): void {
    for (const source of this.#insured) void this.#insurance?.delete(source);
    this.#insured.clear();
    this.#refresher?.cancel();
    this.#unsubscribe();
    this.#offStatus();
  }
}

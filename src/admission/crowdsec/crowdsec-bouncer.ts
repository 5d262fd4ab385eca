import type { Clock, Timer } from '../../core/clock.js';
import type { AdmitVerdict } from '../admitter.js';
import { parseIpValue } from '../../core/ip-value.js';
import type { Cidr } from '../../core/cidr.js';
import { crowdsecBanView, type CrowdsecBanView } from './ban-view.js';
import { DecisionStore } from './decision-store.js';
import { CrowdsecPullError, pullDecisionStream, type PullFailure } from './lapi-stream.js';
import { STALE_AFTER_FAILURES } from './settings.js';
import type { CrowdsecSettings } from '../../config/crowdsec-settings.js';
import type { IgnoredReason, StreamBody } from './stream-body.js';

/**
 * Where the bouncer stands:
 * - `starting`: the first pull has not finished; no list.
 * - `ready`: the last pull succeeded.
 * - `degraded`: a list is loaded and 1 or 2 pulls in a row have failed; the list is still used.
 * - `stale`: a list is loaded and STALE_AFTER_FAILURES pulls in a row have failed.
 * - `unavailable`: no pull has ever succeeded, and at least one has failed.
 * - `closed`: stopped; the last list (if any) stays in use, nothing is pulled.
 * `onUnavailable` applies in `starting`, `unavailable` and `stale`.
 */
export type BouncerState = 'starting' | 'ready' | 'degraded' | 'stale' | 'unavailable' | 'closed';

/** A snapshot of the bouncer for people and metrics. */
export interface BouncerStats {
  readonly state: BouncerState;
  readonly consecutiveFailures: number;
  readonly lastError: { readonly kind: PullFailure; readonly message: string } | undefined;
  /** Wall-clock ms of the last successful pull, or undefined. */
  readonly lastSuccessAt: number | undefined;
  /** Decisions held (several may ban one address). */
  readonly decisions: number;
  /** Distinct banned addresses and networks. */
  readonly ips: number;
  readonly ranges: number;
}

/** A state change, reported once by the bouncer; the composition root logs it. */
export interface BouncerStatus {
  readonly state: BouncerState;
  readonly previous: BouncerState;
  /** The failure that caused a change to degraded, stale or unavailable. */
  readonly error?: { readonly kind: PullFailure; readonly message: string };
  readonly consecutiveFailures: number;
  readonly ips: number;
  readonly ranges: number;
}

/**
 * Totals that outlive one bouncer (a reload that changes the LAPI starts a new bouncer with the
 * same counters), read by metrics at scrape time. Only ever grow.
 */
export class CrowdsecCounters {
  readonly pullsOk = { full: 0, delta: 0 };
  readonly pullsFailed: Record<PullFailure, number> = { auth: 0, http: 0, unreachable: 0, timeout: 0, malformed: 0 };
  readonly ignored: Record<IgnoredReason, number> = { scope: 0, type: 0, simulated: 0, expired: 0, invalid: 0 };
}

export interface BouncerDeps {
  readonly clock: Clock;
  /** Called once per state change. Must not throw. */
  readonly onStatus?: (s: BouncerStatus) => void;
  /**
   * Called when `check` may now refuse a client it admitted before: a pull brought bans, or the
   * state changed while `onUnavailable` is deny. Live sessions are judged again on it. Must not throw.
   */
  readonly onVerdictsChanged?: () => void;
  readonly counters?: CrowdsecCounters;
  /** The pull itself; tests and other transports replace it. Default: HTTP to `settings.url`. */
  readonly pull?: (startup: boolean, signal: AbortSignal) => Promise<StreamBody>;
}

/**
 * A CrowdSec bouncer in stream mode. Pulls the full decision list at start, then the changes
 * every `intervalMs` (from the start of one pull to the start of the next; pulls never overlap),
 * and answers `check` from memory, synchronously: the data path never waits on the LAPI.
 *
 * After a failed pull the next one asks for the full list again (`startup=true`) and replaces the
 * table: the LAPI advances this key's cursor when it answers, so a delta lost to a timeout or a
 * reset would otherwise never arrive.
 *
 * Lifetime: starts pulling on construction; `close()` is idempotent and cancels a pull in flight.
 */
export class CrowdsecBouncer {
  readonly counters: CrowdsecCounters;
  /** Settles when the first pull has finished, whether it succeeded or not. Never rejects. */
  readonly firstPull: Promise<void>;
  readonly #deps: BouncerDeps;
  readonly #store: DecisionStore;
  readonly #life = new AbortController();
  readonly #pull: (startup: boolean, signal: AbortSignal) => Promise<StreamBody>;
  #state: BouncerState = 'starting';
  #failures = 0;
  #needFull = true;
  #lastError: { kind: PullFailure; message: string } | undefined;
  #lastSuccessWall: number | undefined;
  #timer: Timer | undefined;
  #running: Promise<void> | undefined;
  #unavailableVerdict: AdmitVerdict;
  #settings: CrowdsecSettings;

  constructor(settings: CrowdsecSettings, deps: BouncerDeps) {
    this.#settings = settings;
    this.#store = new DecisionStore(settings.banPrefix);
    this.#deps = deps;
    this.counters = deps.counters ?? new CrowdsecCounters();
    this.#pull = deps.pull ?? ((startup, signal) => pullDecisionStream(settings.url, settings.apiKey, startup, settings.timeoutMs, deps.clock, signal));
    this.#unavailableVerdict = this.#makeUnavailableVerdict();
    this.firstPull = this.refresh();
  }

  get state(): BouncerState {
    return this.#state;
  }

  get settings(): CrowdsecSettings {
    return this.#settings;
  }

  /** Swaps `mode` and `onUnavailable` in place (a reload that changes only those keeps the list). */
  setPolicy(mode: CrowdsecSettings['mode'], onUnavailable: CrowdsecSettings['onUnavailable']): void {
    this.#settings = { ...this.#settings, mode, onUnavailable };
    this.#unavailableVerdict = this.#makeUnavailableVerdict();
  }

  /**
   * The verdict for a canonical client address, from memory. Undefined admits. A ban, or
   * (with `onUnavailable: deny`) a missing or stale list, refuses with reason `crowdsec`;
   * in observe mode the verdict is observe-only. Text that is not an IP address is admitted:
   * CrowdSec has no decision about it (sockets never report such text).
   */
  check(address: string): AdmitVerdict | undefined {
    const s = this.#state;
    if ((s === 'starting' || s === 'unavailable' || s === 'stale') && this.#settings.onUnavailable === 'deny') return this.#unavailableVerdict;
    const ip = parseIpValue(address);
    if (!ip) return undefined;
    const hit = this.#store.match(ip, this.#deps.clock.now());
    if (!hit) return undefined;
    return { reason: 'crowdsec', detail: hit.detail, observeOnly: this.#settings.mode === 'observe' };
  }

  /** The live ban decisions from `offset` (at most `limit`, in the order received) and their total, for the ban list view. */
  bans(offset: number, limit: number): { total: number; bans: CrowdsecBanView[] } {
    const { clock } = this.#deps;
    const now = clock.now();
    const r = this.#store.list(now, offset, limit);
    return { total: r.total, bans: r.decisions.map((d) => crowdsecBanView(d, clock, now)) };
  }

  /** The live decisions on exactly `target` (what a request to lift that ban is about). */
  bansOn(target: Cidr): CrowdsecBanView[] {
    const { clock } = this.#deps;
    const now = clock.now();
    return this.#store.on(target, now).map((d) => crowdsecBanView(d, clock, now));
  }

  /**
   * The decision banning a per-source key (an address, or a network such as `2001:db8:1:2::/64`
   * judged by its first address), for /api/sources; undefined when none. The list as loaded,
   * whatever the state and mode (the view says what CrowdSec decided).
   */
  banOf(sourceKey: string): CrowdsecBanView | undefined {
    if (this.#store.decisions === 0) return undefined;
    const slash = sourceKey.indexOf('/');
    const ip = parseIpValue(slash < 0 ? sourceKey : sourceKey.slice(0, slash));
    if (!ip) return undefined;
    const { clock } = this.#deps;
    const now = clock.now();
    const d = this.#store.find(ip, now);
    return d && crowdsecBanView(d, clock, now);
  }

  /** For the admin view, logs and tests. */
  stats(): BouncerStats {
    return {
      state: this.#state,
      consecutiveFailures: this.#failures,
      lastError: this.#lastError,
      lastSuccessAt: this.#lastSuccessWall,
      decisions: this.#store.decisions,
      ...this.#store.size,
    };
  }

  /**
   * Pulls now (or joins the pull in flight), then schedules the next one `intervalMs` after this
   * one started. Resolves when done; never rejects (failures change the state and are counted).
   */
  refresh(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    this.#running ??= this.#pullOnce().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Stops pulling; a pull in flight is cancelled. The last list stays in memory. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#timer?.cancel();
    this.#life.abort();
    this.#set('closed', undefined);
  }

  async #pullOnce(): Promise<void> {
    this.#timer?.cancel();
    const { clock } = this.#deps;
    const started = clock.now();
    const full = this.#needFull;
    try {
      const body = await this.#pull(full, this.#life.signal);
      if (this.#state === 'closed') return;
      const now = clock.now();
      if (full) this.#store.replace(body, now);
      else this.#store.apply(body, now);
      const banned = body.added.length > 0;
      this.#store.sweep(now);
      for (const [reason, n] of Object.entries(body.ignored)) this.counters.ignored[reason as IgnoredReason] += n;
      this.counters.pullsOk[full ? 'full' : 'delta']++;
      this.#needFull = false;
      this.#failures = 0;
      this.#lastSuccessWall = clock.wallNow();
      if (this.#set('ready', undefined) || banned) this.#verdictsMayHaveChanged(banned);
    } catch (err) {
      if (this.#state === 'closed') return;
      const e =
        err instanceof CrowdsecPullError
          ? { kind: err.kind, message: err.message }
          : { kind: 'malformed' as const, message: `pull failed: ${(err as Error)?.message ?? String(err)}` };
      this.counters.pullsFailed[e.kind]++;
      this.#failures++;
      this.#needFull = true;
      this.#lastError = e;
      const loaded = this.#lastSuccessWall !== undefined;
      if (this.#set(!loaded ? 'unavailable' : this.#failures >= STALE_AFTER_FAILURES ? 'stale' : 'degraded', e)) this.#verdictsMayHaveChanged(false);
    } finally {
      if (this.#state !== 'closed') {
        const wait = Math.max(0, started + this.#settings.intervalMs - clock.now());
        this.#timer = clock.setTimeout(() => void this.refresh(), wait);
      }
    }
  }

  /** Bans were added, or the state changed: the latter matters only when the state decides (onUnavailable: deny). */
  #verdictsMayHaveChanged(banned: boolean): void {
    if (banned || this.#settings.onUnavailable === 'deny') this.#deps.onVerdictsChanged?.();
  }

  /** Moves to `state`; true (and reported) when it is a change. */
  #set(state: BouncerState, error: { kind: PullFailure; message: string } | undefined): boolean {
    const previous = this.#state;
    this.#state = state;
    this.#unavailableVerdict = this.#makeUnavailableVerdict();
    if (state === previous) return false;
    const { ips, ranges } = this.#store.size;
    this.#deps.onStatus?.({ state, previous, ...(error ? { error } : {}), consecutiveFailures: this.#failures, ips, ranges });
    return true;
  }

  #makeUnavailableVerdict(): AdmitVerdict {
    const why =
      this.#state === 'stale'
        ? `decision list stale: ${this.#failures} pulls in a row failed (last: ${this.#lastError?.kind})`
        : this.#state === 'unavailable'
          ? `no decision list loaded: ${this.#lastError?.kind}`
          : 'no decision list loaded yet';
    return { reason: 'crowdsec', detail: `${why}; onUnavailable is deny`, observeOnly: this.#settings.mode === 'observe' };
  }
}

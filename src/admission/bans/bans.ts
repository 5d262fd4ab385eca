import { join } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock, Timer } from '../../core/clock.js';
import type { BanInfo, EventStream } from '../../observe/events.js';
import type { Admitter } from '../admitter.js';
import { readBanFile, BanFileWriter } from './ban-file.js';
import { BanRules } from './ban-rules.js';
import { BanStore, type BanRequest } from './ban-store.js';
import { BYTE_SAMPLE_MS, type MeteredFlow } from './byte-meter.js';
import type { BansSettings } from '../../config/bans-settings.js';

/** The state file inside `bans.stateDir`. */
export const BAN_FILE = 'bans.json';

/** How often expired bans are swept (lookups already ignore them; this reports them and frees memory). */
const SWEEP_MS = 1000;

export interface BansDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  /** Problems that do not stop Sluice (a malformed state file, a failed save), for the ops log. */
  readonly warn: (fields: Record<string, unknown>, message: string) => void;
  /** The ban list grew: live sessions must be judged again (VerdictChanges.changed('bans')). */
  readonly onBanned: () => void;
  /** Ban rules of a live route, by name (undefined: the route does not say; `bans.default` applies). */
  readonly rulesOf: (route: string) => readonly string[] | undefined;
  /** Ban rules of a gateway's agent endpoint (`gateway.bans`; undefined: `bans.default` applies). */
  readonly agentEndpointRules?: () => readonly string[] | undefined;
  /** Sessions and connections open now, of every route and exposed service, for `bytesPer` rules. */
  readonly liveFlows?: () => Iterable<MeteredFlow>;
}

/**
 * Bans as a whole (docs/bans.md): the list (BanStore), its state file, the behaviour rules fed from
 * the event stream, the admission step, events and metrics. One per process; `apply` takes a
 * reloaded `bans:` section.
 */
export class Bans {
  readonly store: BanStore;
  readonly #rules: BanRules;
  readonly #deps: BansDeps;
  readonly #added = new Map<string, number>();
  readonly #registries = new WeakSet<Registry>();
  #settings: BansSettings | undefined;
  #writer: BanFileWriter | undefined;
  #sweep: Timer;
  /** Reads live sessions' counters while some rule has `bytesPer`. */
  #sampler: Timer | undefined;
  #unsubscribe: () => void;
  #rejudgeQueued = false;

  private constructor(deps: BansDeps) {
    this.#deps = deps;
    this.store = new BanStore(deps.clock);
    this.#rules = new BanRules({
      clock: deps.clock,
      store: this.store,
      rulesOf: (route) => deps.rulesOf(route) ?? this.#settings?.default,
      agentEndpointRules: () => deps.agentEndpointRules?.() ?? this.#settings?.default,
      wouldBan: (ban) => deps.events.emit({ type: 'ban-added', at: deps.clock.wallNow(), ban, observeOnly: true }),
    });
    this.store.onChange((c) => {
      const at = deps.clock.wallNow();
      if (c.kind === 'added') {
        const source = c.ban.source.startsWith('rule:') ? 'rule' : c.ban.source;
        this.#added.set(source, (this.#added.get(source) ?? 0) + 1);
        deps.events.emit({ type: 'ban-added', at, ban: c.ban });
        this.#rejudgeSoon();
      } else {
        deps.events.emit({ type: 'ban-removed', at, ban: c.ban, why: c.kind });
      }
      this.#writer?.save(() => this.store.list());
    });
    this.#unsubscribe = deps.events.subscribe(this.#rules.sink, this.#rules.interest);
    this.#sweep = deps.clock.setInterval(() => this.store.sweep(), SWEEP_MS);
  }

  /** Starts with `settings`: reads the state file (a malformed one is reported through `warn` and ignored). */
  static async start(settings: BansSettings | undefined, deps: BansDeps): Promise<Bans> {
    const bans = new Bans(deps);
    await bans.apply(settings);
    return bans;
  }

  get settings(): BansSettings | undefined {
    return this.#settings;
  }

  /** The state file in use, if any (no `bans:` section: bans live in memory only). */
  get stateFile(): string | undefined {
    return this.#writer?.path;
  }

  /** Takes a (re)loaded section. A new state directory is read (its bans join the list) and written from then on. */
  async apply(settings: BansSettings | undefined): Promise<void> {
    this.#settings = settings;
    this.store.setAllow(settings?.allow ?? []);
    this.#rules.apply(settings);
    const sample = this.#rules.metersBytes && this.#deps.liveFlows;
    if (sample && !this.#sampler) this.#sampler = this.#deps.clock.setInterval(() => this.#rules.sampleBytes(sample()), BYTE_SAMPLE_MS);
    else if (!sample && this.#sampler) {
      this.#sampler.cancel();
      this.#sampler = undefined;
    }
    const path = settings ? join(settings.stateDir, BAN_FILE) : undefined;
    if (path === this.#writer?.path) return;
    await this.#writer?.flushed();
    this.#writer = path === undefined ? undefined : new BanFileWriter(path, (err) => this.#deps.warn({ file: path, err: err.message }, 'cannot save the ban list'));
    if (path === undefined) return;
    const read = await readBanFile(path);
    if (read.kind === 'malformed') this.#deps.warn({ file: path, problem: read.problem }, 'ban state file is malformed; starting without its bans');
    if (read.kind === 'ok' && this.store.restore(read.bans) > 0) this.#rejudgeSoon();
  }

  /**
   * Live sessions are judged again once, after the current event (a rule fires inside a
   * session-started emit, where ending sessions would re-enter the route), however many bans
   * were added meanwhile.
   */
  #rejudgeSoon(): void {
    if (this.#rejudgeQueued) return;
    this.#rejudgeQueued = true;
    queueMicrotask(() => {
      this.#rejudgeQueued = false;
      this.#deps.onBanned();
    });
  }

  /** The admission step for every route: refuses a banned client with reason `banned`. */
  readonly admitter: Admitter = (client) => {
    const detail = this.store.check(client.address, client.family);
    return detail === undefined ? undefined : { reason: 'banned', detail };
  };

  add(req: BanRequest): BanInfo | string {
    return this.store.add(req);
  }

  remove(target: string): BanInfo | undefined {
    return this.store.remove(target);
  }

  /** Resolves when the state file holds every change made so far. */
  flushed(): Promise<void> {
    return this.#writer?.flushed() ?? Promise.resolve();
  }

  /** Adds `sluice_bans_active` and `sluice_bans_added_total` to `registry` (once per registry). */
  exposeMetrics(registry: Registry | undefined): void {
    if (!registry || this.#registries.has(registry)) return;
    this.#registries.add(registry);
    const store = this.store;
    const added = this.#added;
    new Gauge({
      name: 'sluice_bans_active',
      help: 'Bans in force now (addresses and networks on the ban list)',
      registers: [registry],
      collect() {
        this.set(store.size);
      },
    });
    new Counter({
      name: 'sluice_bans_added_total',
      help: 'Bans added, by source (rule, api)',
      labelNames: ['source'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [source, n] of added) this.inc({ source }, n);
      },
    });
  }

  /** Stops sweeping and counting; pending saves finish. Idempotent. */
  async close(): Promise<void> {
    this.#sweep.cancel();
    this.#sampler?.cancel();
    this.#unsubscribe();
    await this.flushed();
  }
}

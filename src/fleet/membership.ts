import { randomUUID } from 'node:crypto';
import type { Clock, Timer } from '../core/clock.js';
import type { FleetSettings } from '../config/fleet-settings.js';
import type { FleetLink } from './fleet-link.js';

/** What this gateway tells the fleet about itself at every heartbeat. */
export interface LocalGateway {
  /** Names of the agents attached to this gateway now. */
  agents(): Iterable<string>;
  /** Load figures shown in the fleet view. */
  load(): GatewayLoad;
  /** The agent endpoint's bound port (read at each heartbeat: the gateway starts after the fleet). */
  agentPort(): number;
}

export interface GatewayLoad {
  readonly agents: number;
  readonly sessions: number;
}

/** One gateway's registration (the JSON value of `<prefix>gw:<name>`). */
export interface GatewayRecord {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly agentPort: number;
  readonly load: GatewayLoad;
  readonly version: string;
  /** Wall ms: when this process started and when it last registered. */
  readonly startedAt: number;
  readonly seenAt: number;
  /** Random per process: two processes claiming one name are told apart by it. */
  readonly instance: string;
}

export interface MembershipDeps {
  readonly clock: Clock;
  readonly version: string;
  readonly local: LocalGateway;
  /** Problems worth one ops-log line (a name claimed twice, a failed heartbeat). */
  readonly warn: (fields: Record<string, unknown>, message: string) => void;
}

/**
 * Registration of this gateway and presence of its agents (docs/fleet.md, "Keys"):
 * - `gw:<name>` = GatewayRecord JSON, PX ttl, rewritten every heartbeat; `gateways` (sorted set,
 *   score = wall ms when the registration lapses) indexes the names.
 * - `agent:<agent>:<gateway>` = wall ms when that presence lapses, PX ttl: one key per agent and
 *   gateway holding it, so a dead gateway's presences expire on their own; `agents` (sorted set,
 *   score = latest lapse) indexes the agent names. A heartbeat costs one SET per agent plus one
 *   ZADD for all of them; an agent coming or going is written at once (`agentUp`, `agentDown`).
 * Every key is keyed by name, so registering again (after an outage, or into a Redis restarted
 * empty) overwrites and never duplicates. Readers drop entries whose lapse time passed, so a
 * dead gateway leaves the view within ttl even where its keys were not yet evicted.
 */
export class FleetMembership {
  readonly instance = randomUUID();
  readonly #startedAt: number;
  #view: readonly GatewayRecord[] = [];
  /** Wall ms of the last successful read of the view. */
  #viewAt = 0;
  /** Agents whose presence this gateway wrote, to remove the ones that left. */
  #written = new Set<string>();
  #timer: Timer | undefined;
  #beating: Promise<void> | undefined;
  #again: Promise<void> | undefined;
  #closed = false;
  #conflict: string | undefined;
  readonly #onView = new Set<(view: readonly GatewayRecord[]) => void>();

  constructor(
    private readonly link: FleetLink,
    private readonly settings: FleetSettings,
    private readonly deps: MembershipDeps,
  ) {
    this.#startedAt = deps.clock.wallNow();
  }

  /** Registers now and then every heartbeat; registers again at once whenever the link comes back. */
  start(): Promise<void> {
    this.#timer = this.deps.clock.setInterval(() => void this.beat(), this.settings.heartbeatMs);
    this.link.onStatus((s) => {
      if (s === 'ok') void this.beat();
    });
    return this.beat();
  }

  /** The gateways alive at the last successful read (this one included, even while Redis is down). */
  get view(): readonly GatewayRecord[] {
    return this.#view;
  }

  /** Wall ms of the last successful read (0 = never). */
  get viewAt(): number {
    return this.#viewAt;
  }

  /** Another process registered under this gateway's name (its instance id), if seen. */
  get conflict(): string | undefined {
    return this.#conflict;
  }

  /** Names of the gateways alive at the last read. */
  alive(): Set<string> {
    return new Set(this.#view.map((g) => g.name));
  }

  onView(listener: (view: readonly GatewayRecord[]) => void): () => void {
    this.#onView.add(listener);
    return () => this.#onView.delete(listener);
  }

  /**
   * One heartbeat (writes, then reads the view). A call during a run gets one more run after it,
   * so a change that run did not see (an agent came or went) is written without waiting a period.
   */
  beat(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#beating) {
      this.#again ??= this.#beating.then(() => {
        this.#again = undefined;
        return this.beat();
      });
      return this.#again;
    }
    this.#beating = this.#beat().finally(() => (this.#beating = undefined));
    return this.#beating;
  }

  record(): GatewayRecord {
    const now = this.deps.clock.wallNow();
    return {
      name: this.settings.name,
      addresses: this.settings.publicAddresses,
      agentPort: this.deps.local.agentPort(),
      load: this.deps.local.load(),
      version: this.deps.version,
      startedAt: this.#startedAt,
      seenAt: now,
      instance: this.instance,
    };
  }

  async #beat(): Promise<void> {
    const self = this.record();
    if (this.link.status !== 'ok') {
      this.#setView(this.#view.filter((g) => g.name !== self.name).concat(self).sort((a, b) => a.name.localeCompare(b.name)), false);
      return;
    }
    const { commands: r } = this.link;
    const k = (...p: string[]) => this.link.key(...p);
    const now = self.seenAt;
    const lapse = now + this.settings.ttlMs;
    const ttl = this.settings.ttlMs;
    const agents = new Set(this.deps.local.agents());
    const p = r.pipeline();
    p.set(k('gw', self.name), JSON.stringify(self), 'PX', ttl, 'GET');
    p.zadd(k('gateways'), lapse, self.name);
    p.zremrangebyscore(k('gateways'), '-inf', now);
    const index: (string | number)[] = [];
    for (const a of agents) {
      p.set(k('agent', a, self.name), lapse, 'PX', ttl);
      index.push(lapse, a);
    }
    if (index.length > 0) p.zadd(k('agents'), 'GT', ...index);
    for (const a of this.#written) if (!agents.has(a)) p.del(k('agent', a, self.name));
    p.zremrangebyscore(k('agents'), '-inf', now);
    p.zrangebyscore(k('gateways'), now, '+inf');
    try {
      const res = (await p.exec()) ?? [];
      const failed = res.find(([err]) => err);
      if (failed) throw failed[0];
      this.#written = agents;
      this.#noteConflict(res[0]![1] as string | null, now);
      const names = (res[res.length - 1]![1] as string[]).filter((n) => n !== self.name);
      const others = names.length === 0 ? [] : await r.mget(names.map((n) => k('gw', n)));
      const view = [self];
      for (const text of others) {
        const g = parseRecord(text);
        if (g) view.push(g);
      }
      this.#setView(view.sort((a, b) => a.name.localeCompare(b.name)), true);
    } catch (err) {
      this.deps.warn({ err: (err as Error).message }, 'fleet: heartbeat failed');
    }
  }

  #noteConflict(previous: string | null, now: number): void {
    const prev = parseRecord(previous);
    if (prev && prev.instance !== this.instance && prev.seenAt > now - this.settings.ttlMs && prev.startedAt <= this.#startedAt) {
      if (this.#conflict !== prev.instance) this.deps.warn({ name: this.settings.name, other: prev.instance }, 'fleet: another gateway registers under this name');
      this.#conflict = prev.instance;
    }
  }

  #setView(view: readonly GatewayRecord[], fresh: boolean): void {
    this.#view = view;
    if (fresh) this.#viewAt = this.deps.clock.wallNow();
    for (const l of [...this.#onView]) l(view);
  }

  /** An agent attached here: its presence is written now, not at the next heartbeat. */
  agentUp(agent: string): void {
    if (this.#closed || this.link.status !== 'ok') return;
    const lapse = this.deps.clock.wallNow() + this.settings.ttlMs;
    this.#written.add(agent);
    this.link.commands
      .pipeline()
      .set(this.link.key('agent', agent, this.settings.name), lapse, 'PX', this.settings.ttlMs)
      .zadd(this.link.key('agents'), 'GT', lapse, agent)
      .exec()
      .catch(() => {});
  }

  /** An agent left this gateway: its presence here is removed now. */
  agentDown(agent: string): void {
    if (this.#closed || this.link.status !== 'ok') return;
    this.#written.delete(agent);
    this.link.commands.del(this.link.key('agent', agent, this.settings.name)).catch(() => {});
  }

  /** Which gateways (of the view) hold each agent now: one MGET over every agent and gateway. */
  async agents(): Promise<{ name: string; gateways: string[] }[]> {
    const now = this.deps.clock.wallNow();
    const names = await this.link.commands.zrangebyscore(this.link.key('agents'), now, '+inf');
    const held = await this.#held(names, now);
    return names
      .map((name, i) => ({ name, gateways: held[i]! }))
      .filter((a) => a.gateways.length > 0)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The gateways (of the view) holding one agent now (empty when none, or when Redis cannot be read). */
  async gatewaysOf(agent: string): Promise<string[]> {
    try {
      return (await this.#held([agent], this.deps.clock.wallNow()))[0]!;
    } catch {
      return [];
    }
  }

  /** For each agent, the gateways of the view whose presence key for it is live. */
  async #held(agents: readonly string[], now: number): Promise<string[][]> {
    const gateways = this.#view.map((g) => g.name).sort();
    if (agents.length === 0 || gateways.length === 0) return agents.map(() => []);
    const keys = agents.flatMap((a) => gateways.map((g) => this.link.key('agent', a, g)));
    const out: string[][] = agents.map(() => []);
    // MGET in slices: one reply stays a few hundred kB however large the fleet.
    for (let i = 0; i < keys.length; i += 10_000) {
      const values = await this.link.commands.mget(keys.slice(i, i + 10_000));
      values.forEach((v, j) => {
        const at = i + j;
        if (v !== null && Number(v) > now) out[Math.floor(at / gateways.length)]!.push(gateways[at % gateways.length]!);
      });
    }
    return out;
  }

  /** Stops the heartbeat and removes this gateway and its presence at once (best effort). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    await this.#beating;
    if (this.link.status !== 'ok') return;
    const k = (...p: string[]) => this.link.key(...p);
    const p = this.link.commands.pipeline();
    p.del(k('gw', this.settings.name));
    p.zrem(k('gateways'), this.settings.name);
    for (const a of this.#written) p.del(k('agent', a, this.settings.name));
    await p.exec().catch(() => {});
  }
}

function parseRecord(text: string | null | undefined): GatewayRecord | undefined {
  if (!text) return undefined;
  try {
    const g = JSON.parse(text) as GatewayRecord;
    return typeof g.name === 'string' && typeof g.seenAt === 'number' ? g : undefined;
  } catch {
    return undefined;
  }
}

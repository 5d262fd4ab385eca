import type { Clock } from '../core/clock.js';
import type { EventStream } from '../observe/events.js';
import type { FleetSettings } from '../config/fleet-settings.js';
import type { BanStore } from '../admission/bans/ban-store.js';
import type { Admitter } from '../admission/admitter.js';
import { openFleetLink, type FleetLink, type FleetLinkStatus } from './fleet-link.js';
import { FleetMembership, type GatewayRecord, type LocalGateway } from './membership.js';
import { FleetLimits } from './fleet-limits.js';
import { FleetBans } from './fleet-bans.js';

export interface FleetDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly version: string;
  readonly local: LocalGateway;
  /** The node's ban list, shared with the fleet; absent = bans stay local. */
  readonly bans?: BanStore;
  readonly warn: (fields: Record<string, unknown>, message: string) => void;
  /** How long `start` waits for Redis before going on degraded (ms); default 2000. */
  readonly connectWaitMs?: number;
}

/** The fleet section of /api/health and `sluice status`. */
export interface FleetHealth {
  readonly status: FleetLinkStatus;
  readonly name: string;
  readonly redis: string;
  /** Why the link is degraded, while it is. */
  readonly error?: string;
  readonly gateways: number;
  readonly onRedisDown: 'local' | 'deny';
  /** Another process registers under this gateway's name (its instance id). */
  readonly nameConflict?: string;
}

/** The body of `GET /api/fleet` (docs/admin.md). */
export interface FleetView {
  readonly name: string;
  readonly status: FleetLinkStatus;
  readonly redis: string;
  /** Wall time of the last successful read of the gateways (ISO), null = never. */
  readonly asOf: string | null;
  readonly gateways: readonly (Omit<GatewayRecord, 'startedAt' | 'seenAt'> & { alive: boolean; self: boolean; startedAt: string; seenAt: string })[];
  /** Every agent present on some gateway, and which; null when Redis cannot be read. */
  readonly agents: readonly { name: string; gateways: string[] }[] | null;
  readonly limits: { maxPerSource: number; ratePerSource: number; rateWindowMs: number; onRedisDown: 'local' | 'deny' } & ReturnType<FleetLimits['snapshot']> & FleetLimits['counters'];
  readonly bans: FleetBans['counters'] | null;
}

/**
 * A gateway's membership of its fleet (docs/fleet.md): the Redis link, registration and agent
 * presence, fleet-wide limits and bans. Built by the root from `gateway.fleet`; `link` and
 * `membership` are the seams other gateway parts (agents homed on several gateways, peer
 * signalling) use. `close` is idempotent: it deregisters, then closes the link.
 */
export class Fleet {
  #closing: Promise<void> | undefined;
  readonly #unsubscribe: () => void;

  private constructor(
    readonly settings: FleetSettings,
    readonly link: FleetLink,
    readonly membership: FleetMembership,
    readonly limits: FleetLimits,
    readonly bans: FleetBans | undefined,
    events: EventStream,
  ) {
    this.#unsubscribe = events.subscribe((e) => {
      switch (e.type) {
        case 'session-started':
          limits.started(e.flow.id, e.flow.client);
          break;
        case 'session-ended':
          limits.ended(e.flow.id);
          break;
        case 'gateway-agent-up':
          membership.agentUp(e.agent);
          break;
        case 'gateway-agent-down':
        case 'gateway-agent-gone':
          membership.agentDown(e.agent);
          break;
      }
    });
  }

  /** Connects (waiting at most `connectWaitMs` for Redis), registers, and starts the heartbeat. */
  static async start(settings: FleetSettings, deps: FleetDeps, signal: AbortSignal): Promise<Fleet> {
    const link = await openFleetLink(settings, deps.clock, signal, deps.connectWaitMs);
    const membership = new FleetMembership(link, settings, { clock: deps.clock, version: deps.version, local: deps.local, warn: deps.warn });
    const limits = new FleetLimits(link, settings, { clock: deps.clock, alive: () => membership.alive() });
    const bans = deps.bans ? new FleetBans(link, deps.bans, deps.clock) : undefined;
    const fleet = new Fleet(settings, link, membership, limits, bans, deps.events);
    link.onStatus((s) => deps.warn({ fleet: settings.name, status: s, ...(link.lastError ? { error: link.lastError } : {}) }, s === 'ok' ? 'fleet: Redis reachable again' : 'fleet: Redis unreachable; serving with local state'));
    await membership.start();
    await bans?.sync();
    return fleet;
  }

  /** The fleet-wide limits as an admission step (wrap it so live sessions are not re-judged by it). */
  get admitter(): Admitter {
    return this.limits.admitter;
  }

  health(): FleetHealth {
    return {
      status: this.link.status,
      name: this.settings.name,
      redis: this.settings.redis.shown,
      ...(this.link.lastError ? { error: this.link.lastError } : {}),
      gateways: this.membership.view.length,
      onRedisDown: this.settings.onRedisDown,
      ...(this.membership.conflict ? { nameConflict: this.membership.conflict } : {}),
    };
  }

  async view(): Promise<FleetView> {
    const agents = this.link.status === 'ok' ? await this.membership.agents().catch(() => null) : null;
    const alive = this.link.status === 'ok';
    const { maxPerSource, ratePerSource, rateWindowMs } = this.settings.limits;
    return {
      name: this.settings.name,
      status: this.link.status,
      redis: this.settings.redis.shown,
      asOf: this.membership.viewAt > 0 ? new Date(this.membership.viewAt).toISOString() : null,
      gateways: this.membership.view.map(({ startedAt, seenAt, ...g }) => ({
        ...g,
        self: g.name === this.settings.name,
        alive: alive || g.name === this.settings.name,
        startedAt: new Date(startedAt).toISOString(),
        seenAt: new Date(seenAt).toISOString(),
      })),
      agents,
      limits: { maxPerSource, ratePerSource, rateWindowMs, onRedisDown: this.settings.onRedisDown, ...this.limits.snapshot(), ...this.limits.counters },
      bans: this.bans ? { ...this.bans.counters } : null,
    };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#unsubscribe();
      this.limits.close();
      this.bans?.close();
      await this.membership.close();
      await this.link.close();
    })();
    return this.#closing;
  }
}

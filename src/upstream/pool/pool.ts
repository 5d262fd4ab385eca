import { canonicalIp, formatHostPort, type Endpoint } from '../../core/address.js';
import type { Clock } from '../../core/clock.js';
import { SluiceError } from '../../core/errors.js';
import type { EventStream } from '../../observe/events.js';
import { makeBalancer, type Balancer } from './balance.js';
import type { MemberSpec } from './member.js';
import type { MemberState } from './member-state.js';
import { PoolMember, type LastCheck } from './pool-member.js';
import type { PoolSettings } from './pool-settings.js';

export interface PoolDeps {
  readonly clock: Clock;
  readonly events?: EventStream;
  /** For p2c and check jitter; tests inject a seeded one. */
  readonly random?: () => number;
}

/** One member as the admin API, `sluice status` and metrics show it. */
export interface MemberView {
  readonly key: string;
  readonly label: string;
  readonly weight: number;
  readonly backup: boolean;
  readonly health: MemberState;
  readonly active: number;
  readonly sessions: number;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
  readonly checks: number;
  readonly lastCheck: LastCheck | null;
}

export interface PoolView {
  readonly balance: string;
  readonly failover: 'move' | 'keep';
  /** New flows refused because no member took sessions (`no-healthy-upstream`). */
  readonly refused: number;
  readonly members: MemberView[];
}

/**
 * The members of one route's pool: who takes new flows, their health, reloads. Picking runs once
 * per flow, at open. A member removed by a reload drains: it keeps its flows, takes no new ones,
 * and is forgotten when the last one ends. Up/down transitions go on the event stream
 * (`pool-member`).
 */
export class UpstreamPool {
  readonly #members = new Map<string, PoolMember>();
  /** Members removed by a reload whose flows have not all ended. */
  readonly #draining = new Set<PoolMember>();
  #settings: PoolSettings;
  #balancer: Balancer;
  #refused = 0;
  readonly #primaries: PoolMember[] = [];
  /** allHave's answers, cleared when members change. */
  readonly #allHave = new Map<string, boolean>();
  readonly #backups: PoolMember[] = [];
  #closed = false;
  readonly #random: () => number;

  constructor(
    readonly route: string,
    specs: readonly MemberSpec[],
    settings: PoolSettings,
    private readonly deps: PoolDeps,
  ) {
    this.#settings = settings;
    this.#random = deps.random ?? Math.random;
    this.#balancer = makeBalancer(settings.balance, this.#random);
    for (const s of specs) this.#members.set(s.key, this.#make(s));
  }

  get settings(): PoolSettings {
    return this.#settings;
  }

  members(): PoolMember[] {
    return [...this.#members.values()];
  }

  /** True when every member has this way (read per connection: kept up to date by update()). */
  allHave(way: keyof MemberSpec['ways']): boolean {
    let all = this.#allHave.get(way);
    if (all === undefined) {
      all = [...this.#members.values()].every((m) => m.spec.ways[way] !== undefined);
      this.#allHave.set(way, all);
    }
    return all;
  }

  member(key: string): PoolMember | undefined {
    return this.#members.get(key) ?? [...this.#draining].find((m) => m.key === key);
  }

  /**
   * The member for a new flow of `client`, not one of `tried`: among the primaries that take
   * sessions, else among the backups that do. Counted as active at once (the caller calls
   * `release` when the flow ends or its dial fails). Throws SLUICE_ERR_NO_HEALTHY_UPSTREAM when
   * there is none.
   */
  pick(client: Endpoint | undefined, tried?: ReadonlySet<PoolMember>): PoolMember {
    // Reused arrays: picking runs once per connection and allocates nothing when it succeeds.
    const primaries = this.#primaries;
    const backups = this.#backups;
    primaries.length = 0;
    backups.length = 0;
    for (const m of this.#members.values()) {
      if (!m.takes || (tried !== undefined && tried.has(m))) continue;
      (m.spec.backup ? backups : primaries).push(m);
    }
    const candidates = primaries.length > 0 ? primaries : backups;
    if (candidates.length === 0) {
      if (!tried || tried.size === 0) this.#refused++;
      throw new SluiceError('SLUICE_ERR_NO_HEALTHY_UPSTREAM', `route "${this.route}": no healthy upstream (${this.#members.size} member(s), none taking sessions)`);
    }
    const key = this.#settings.balance === 'source-hash' && client ? (canonicalIp(client.address)?.address ?? client.address) : '';
    const m = this.#balancer.pick(candidates, key);
    primaries.length = 0;
    backups.length = 0;
    m.active++;
    return m;
  }

  /** A flow picked for `m` ended (or its dial failed). A draining member with none left is forgotten. */
  release(m: PoolMember): void {
    if (m.active > 0) m.active--;
    if (m.active === 0 && this.#draining.delete(m)) m.close();
  }

  /** Passive health: a flow on `m` failed (`cause`: dial-failed, icmp-error, silent). */
  failed(m: PoolMember, cause: string): void {
    if (!this.#closed) m.failed(this.#settings.passive, cause);
  }

  /**
   * A reload: members with a key already here stay (with their flows, health and counters; weight
   * and backup flag from the new spec); new ones join; those gone drain. New settings hold for new
   * flows; a changed balance algorithm starts with a fresh balancer.
   */
  update(specs: readonly MemberSpec[], settings: PoolSettings): void {
    if (settings.balance !== this.#settings.balance) this.#balancer = makeBalancer(settings.balance, this.#random);
    this.#settings = settings;
    this.#allHave.clear();
    const next = new Map(specs.map((s) => [s.key, s]));
    for (const [key, m] of this.#members) {
      const spec = next.get(key);
      if (spec) {
        m.reconfigure(spec, spec.ways.probe ? settings.check : undefined);
        continue;
      }
      this.#members.delete(key);
      m.drain();
      if (m.active > 0) this.#draining.add(m);
      else m.close();
    }
    for (const [key, spec] of next) if (!this.#members.has(key)) this.#members.set(key, this.#make(spec));
  }

  view(): PoolView {
    const all = [...this.#members.values(), ...this.#draining];
    return {
      balance: this.#settings.balance,
      failover: this.#settings.failover,
      refused: this.#refused,
      members: all.map((m) => {
        const bytes = m.bytes();
        return {
        key: m.key,
        label: m.spec.label,
        weight: m.spec.weight,
        backup: m.spec.backup,
        health: m.state,
        active: m.active,
        sessions: m.sessions,
        bytesFromClient: bytes.fromClient,
        bytesToClient: bytes.toClient,
        checks: m.checks,
        lastCheck: m.last ?? null,
        };
      }),
    };
  }

  /** Stops every check and ejection timer. Idempotent. Live flows are their routes' to end. */
  close(): void {
    this.#closed = true;
    for (const m of this.#members.values()) m.close();
    for (const m of this.#draining) m.close();
  }

  #make(spec: MemberSpec): PoolMember {
    return new PoolMember(spec, this.deps.clock, this.#random, spec.ways.probe ? this.#settings.check : undefined, (m, from, to, cause) => this.#changed(m, from, to, cause));
  }

  #changed(m: PoolMember, from: MemberState, to: MemberState, cause: string): void {
    if (this.#closed) return;
    this.deps.events?.emit({ type: 'pool-member', at: this.deps.clock.wallNow(), route: this.route, member: m.spec.label, from, to, cause });
    if ((to === 'down' || to === 'ejected') && this.#settings.failover === 'move') {
      for (const c of [...m.channels]) c.move();
    }
  }
}

/** `ip:port` as member keys spell it (canonical address; IPv6 in brackets). */
export function memberKeyOf(e: { address: string; port: number }): string {
  return formatHostPort(canonicalIp(e.address)?.address ?? e.address, e.port);
}

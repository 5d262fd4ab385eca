import { canonicalIp, type Endpoint } from '../../core/address.js';
import type { Clock } from '../../core/clock.js';
import type { EventStream } from '../../observe/events.js';
import type { PoolSpec } from '../../config/pool-schema.js';
import type { DatagramDialer, StreamDialer } from '../dialer.js';
import { directMember, type ProbeSpec } from './direct-member.js';
import type { MemberSpec } from './member.js';
import { NameWatch, systemNameResolver, type NameResolver } from './name-members.js';
import { UpstreamPool } from './pool.js';
import { PoolDatagramDialer } from './pool-datagram-dialer.js';
import { PoolStreamDialer } from './pool-stream-dialer.js';
import type { PoolSettings } from './pool-settings.js';

export interface RoutePoolDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  /** The node's direct dialers: members are dialed through them at their pinned addresses. */
  readonly stream: StreamDialer;
  readonly datagram: DatagramDialer;
  readonly resolver?: NameResolver;
  readonly random?: () => number;
}

/** How long a route's start waits for its member names' first answers. */
const FIRST_RESOLVE_MS = 5_000;

/**
 * The pool of one config route (`upstream` as a list, docs/pools.md): host:port members (names
 * resolved on their TTL, each address a member), the pool, and its two dialers. Reloads update
 * it in place so live sessions stay on members that remain.
 */
export class RoutePool {
  readonly pool: UpstreamPool;
  readonly stream: PoolStreamDialer;
  readonly datagram: PoolDatagramDialer;
  #spec: PoolSpec;
  readonly #names = new Map<string, NameWatch>();

  private constructor(
    readonly route: string,
    readonly transport: 'udp' | 'tcp',
    spec: PoolSpec,
    private readonly deps: RoutePoolDeps,
  ) {
    this.#spec = spec;
    this.pool = new UpstreamPool(route, [], poolSettings(spec), { clock: deps.clock, events: deps.events, ...(deps.random ? { random: deps.random } : {}) });
    this.stream = new PoolStreamDialer(this.pool, deps.clock, deps.events);
    this.datagram = new PoolDatagramDialer(this.pool, deps.clock);
  }

  /** Builds the pool; member names get up to FIRST_RESOLVE_MS for their first answer (later ones join when resolved). */
  static async start(route: string, transport: 'udp' | 'tcp', spec: PoolSpec, deps: RoutePoolDeps): Promise<RoutePool> {
    const p = new RoutePool(route, transport, spec, deps);
    await p.#watchNames(spec);
    p.#apply();
    return p;
  }

  get spec(): PoolSpec {
    return this.#spec;
  }

  /** A reload: the new member list and settings; members that remain keep their sessions. */
  async update(spec: PoolSpec): Promise<void> {
    this.#spec = spec;
    await this.#watchNames(spec);
    this.#apply();
    this.datagram.settingsChanged();
  }

  close(): void {
    for (const w of this.#names.values()) w.close();
    this.#names.clear();
    this.stream.close();
    this.datagram.close();
    this.pool.close();
  }

  async #watchNames(spec: PoolSpec): Promise<void> {
    const wanted = new Set(spec.members.filter((m) => !canonicalIp(m.host)).map((m) => `${m.host}:${m.port}`));
    for (const [k, w] of this.#names) {
      if (wanted.has(k)) continue;
      w.close();
      this.#names.delete(k);
    }
    const fresh: NameWatch[] = [];
    for (const m of spec.members) {
      const k = `${m.host}:${m.port}`;
      if (canonicalIp(m.host) || this.#names.has(k)) continue;
      const w = new NameWatch(m.host, m.port, this.deps.resolver ?? systemNameResolver, this.deps.clock, () => this.#apply());
      this.#names.set(k, w);
      fresh.push(w);
    }
    if (fresh.length === 0) return;
    let timer: { cancel(): void } | undefined;
    const deadline = new Promise<void>((resolve) => (timer = this.deps.clock.setTimeout(resolve, FIRST_RESOLVE_MS)));
    await Promise.race([Promise.all(fresh.map((w) => w.refresh())), deadline]);
    timer?.cancel();
  }

  /** The members the spec and the names' current answers make, into the pool. */
  #apply(): void {
    const spec = this.#spec;
    const c = spec.check;
    const probe: ProbeSpec | undefined = c
      ? {
          transport: this.transport,
          ...(c.send ? { send: Buffer.from(c.send, 'hex') } : {}),
          ...(c.expect ? { expect: { bytes: Buffer.from(c.expect.hex, 'hex'), match: c.expect.match } } : {}),
        }
      : undefined;
    const dialers = { stream: this.deps.stream, datagram: this.deps.datagram };
    const members = new Map<string, MemberSpec>();
    for (const m of spec.members) {
      const ip = canonicalIp(m.host);
      const addresses: readonly Endpoint[] = ip ? [{ address: ip.address, port: m.port, family: ip.family }] : (this.#names.get(`${m.host}:${m.port}`)?.addresses ?? []);
      for (const remote of addresses) {
        const member = directMember({ remote, ...(ip ? {} : { name: m.host }), weight: m.weight, backup: m.backup }, dialers, probe);
        if (!members.has(member.key)) members.set(member.key, member);
      }
    }
    this.pool.update([...members.values()], poolSettings(spec));
  }
}

export function poolSettings(spec: PoolSpec): PoolSettings {
  const c = spec.check;
  return {
    balance: spec.balance,
    ...(c ? { check: { intervalMs: c.intervalMs, timeoutMs: c.timeoutMs, rise: c.rise, fall: c.fall, jitter: c.jitter } } : {}),
    passive: spec.passive,
    failover: spec.failover,
  };
}

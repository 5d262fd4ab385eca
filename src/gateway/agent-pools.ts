import type { Clock } from '../core/clock.js';
import { errnoCode, isSluiceError } from '../core/errors.js';
import type { AgentGroup } from '../config/agent-pool-schema.js';
import type { EventStream } from '../observe/events.js';
import type { RouteRuntime } from '../listen/route.js';
import { verifyGroupProof, type ControlMessage, type Publish, type PublishPool, type RefusalCode, type ServiceHealth } from '../protocol/tunnel/index.js';
import type { DatagramDialer, StreamDialer } from '../upstream/dialer.js';
import { UNSPECIFIED } from '../upstream/agent/agent-tunnel.js';
import type { MemberSpec } from '../upstream/pool/member.js';
import { PoolDatagramDialer } from '../upstream/pool/pool-datagram-dialer.js';
import { PoolStreamDialer } from '../upstream/pool/pool-stream-dialer.js';
import { UpstreamPool, type PoolView } from '../upstream/pool/pool.js';
import { DEFAULT_PASSIVE, type PoolSettings } from '../upstream/pool/pool-settings.js';
import type { AgentLink, PublishedService } from './agent-link.js';
import { inRanges, type PortRanges } from './port-range.js';

export interface AgentPoolsDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly groups: ReadonlyMap<string, AgentGroup>;
  readonly portsOf: (agent: string) => PortRanges;
  /**
   * Starts the shared public listener of a pool (the publisher's, with the pool's dialers): its own
   * port, or a name on the gateway's shared port. Throws as a bind does; a refusal (a name held
   * by a single service) is returned.
   */
  readonly listen: (link: AgentLink, name: string, m: Publish, dialers: { stream: StreamDialer; datagram: DatagramDialer }) => Promise<RouteRuntime | PoolRefusal>;
  /** The pool's last member left: its listener is about to close (a name it holds is free from now on). */
  readonly closing?: (route: RouteRuntime) => void;
  /** The pool's listener closed: its last member left. */
  readonly closed: (route: RouteRuntime) => void;
}

/** One member: an agent's published service, and what decides whether it takes sessions. */
interface Member {
  readonly key: string;
  readonly link: AgentLink;
  readonly service: PublishedService;
  /** The agent checks the service: down until its first report says up. */
  readonly healthReported: boolean;
  /** The agent's latest SERVICE_HEALTH. */
  reportedUp: boolean;
  reportMessage: string;
  /** Unpublished, or its agent is gone: it takes nothing more. */
  leaving: boolean;
}

/** Why a pool could not be opened or joined: a PUBLISH_ERROR's code and message. */
export interface PoolRefusal {
  readonly code: RefusalCode;
  readonly message: string;
}

/** One pool: the shared listener of a remote, its group, and its members by `<agent>/<service>`. */
export class AgentPool {
  readonly members = new Map<string, Member>();
  route: RouteRuntime | undefined;

  constructor(
    readonly remoteKey: string,
    readonly group: AgentGroup,
    readonly transport: 'tcp' | 'udp',
    readonly pool: UpstreamPool,
    readonly dialers: { readonly stream: PoolStreamDialer; readonly datagram: PoolDatagramDialer },
  ) {}

  view(): PoolView & { readonly group: string } {
    return { group: this.group.name, ...this.pool.view() };
  }
}

/**
 * Agent pools on the gateway (docs/pools.md, "Agent pools"): agents that publish the same remote
 * with the same `group` share one public listener, whose upstream is a pool (src/upstream/pool)
 * of their services. A member takes sessions while its agent's control connection is up, its
 * service is published (not stale after a resume), and, when the agent checks it, its latest
 * report says up. Joining needs the group in `gateway.groups`, the agent in its `agents`, and a
 * proof of the group key bound to the agent's TLS connection (group-proof.ts).
 */
export class AgentPools {
  /** By `transport|host|port`, or `transport|name|<server name>` for a pool by name. */
  readonly #pools = new Map<string, AgentPool>();
  /** Pools whose listener is being bound: a second member waits for it instead of binding again. */
  readonly #starting = new Map<string, Promise<AgentPool | PoolRefusal>>();
  /** Each member's service and its pool (a pool by name has no port of its own to find it by). */
  readonly #poolOf = new WeakMap<PublishedService, AgentPool>();

  constructor(private readonly deps: AgentPoolsDeps) {}

  pools(): AgentPool[] {
    return [...this.#pools.values()];
  }

  /** The pool holding `transport` `host:port`, if any: a single service may not take it. */
  holding(m: Publish): AgentPool | undefined {
    return this.#pools.get(remoteKey(m));
  }

  /**
   * A PUBLISH with a pool trailer: joins (or opens) the pool of its remote, or refuses with a code
   * and a message naming the service and the reason. Never throws. A name remote (`serverName`)
   * keys the pool by transport and name; the caller has checked the agent's names policy.
   */
  async publish(link: AgentLink, m: Publish & { pool: PublishPool }, add: (s: PublishedService) => void): Promise<ControlMessage> {
    const refuse = (code: RefusalCode, message: string): ControlMessage => ({ type: 'publish-error', serviceId: m.serviceId, code, message });
    const name = m.pool.group;
    const group = this.deps.groups.get(name);
    if (!group) return refuse('not-allowed', `group "${name}" is not configured on this gateway`);
    if (!group.agents.includes(link.name)) return refuse('not-allowed', `agent "${link.name}" may not join group "${name}"`);
    if (!verifyGroupProof({ key: group.key, binding: link.authBinding, agentName: link.name, group: name }, m.pool.proof)) {
      return refuse('not-allowed', `wrong key for group "${name}"`);
    }
    const byName = m.serverName !== undefined;
    if (!byName && m.remote.port === 0) return refuse('invalid-request', 'a pool member must ask for a fixed port');
    if (!byName && !inRanges(this.deps.portsOf(link.name), m.remote.port)) return refuse('port-outside-range', `port ${m.remote.port} is outside the ports this agent may use`);
    const key = remoteKey(m);
    let pool = this.#pools.get(key);
    if (!pool) {
      let starting = this.#starting.get(key);
      if (!starting) {
        starting = this.#open(link, key, group, m).finally(() => this.#starting.delete(key));
        this.#starting.set(key, starting);
      }
      const opened = await starting;
      if (!(opened instanceof AgentPool)) return refuse(opened.code, opened.message);
      pool = opened;
    }
    if (pool.group !== group) {
      return byName
        ? refuse('name-in-use', `${describeRemote(m)} is the pool of group "${pool.group.name}", not "${name}"`)
        : refuse('port-in-use', `${m.transport} port ${m.remote.port} is the pool of group "${pool.group.name}", not "${name}"`);
    }
    if (link.state === 'closed') {
      // Opened for an agent that left meanwhile: a listener with no member does not stay. Checked
      // after this turn, so members that waited for the same listener have joined by then.
      const opened = pool;
      setImmediate(() => void this.#closeIfEmpty(opened));
      return refuse('shutting-down', 'the agent went away');
    }
    const memberKey = `${link.name}/${m.name}`;
    if (pool.members.has(memberKey)) return refuse('duplicate-service', `${memberKey} is already a member of group "${name}"`);
    const route = pool.route!;
    const service: PublishedService = {
      serviceId: m.serviceId, name: m.name, transport: m.transport, route, stale: false,
      leave: () => this.#leave(pool, memberKey),
    };
    const member: Member = { key: memberKey, link, service, healthReported: m.pool.healthReported, reportedUp: false, reportMessage: '', leaving: false };
    pool.members.set(memberKey, member);
    this.#poolOf.set(service, pool);
    add(service);
    pool.pool.update(this.#specs(pool), pool.pool.settings);
    this.#judge(pool, member, member.healthReported ? "joined, down until the agent's first check report" : 'joined');
    return { type: 'publish-ok', serviceId: m.serviceId, bound: route.local };
  }

  /** The link's connection came or went, or a stale member was published again: members judged again. */
  linkChanged(link: AgentLink, cause: string): void {
    for (const p of this.#pools.values()) {
      for (const member of p.members.values()) if (member.link === link) this.#judge(p, member, cause);
    }
  }

  /** SERVICE_HEALTH from an agent: the member of that service follows it. */
  health(link: AgentLink, h: ServiceHealth): void {
    const s = link.services.get(h.serviceId);
    if (!s?.leave) return;
    const p = this.#poolOf.get(s);
    const member = p?.members.get(`${link.name}/${s.name}`);
    if (!p || !member || member.link !== link) return;
    member.reportedUp = h.up;
    member.reportMessage = h.message;
    this.#judge(p, member, h.up ? 'agent-check-up' : `agent-check-down: ${h.message}`);
  }

  /** Whether a member takes sessions by what the gateway knows; the pool's passive ejections come on top. */
  #judge(p: AgentPool, member: Member, cause: string): void {
    const live = !member.leaving && member.link.state === 'attached' && !member.service.stale && (!member.healthReported || member.reportedUp);
    const m = p.pool.member(member.key);
    if (!m) return;
    const from = m.state;
    // No active check runs on an agent member (rise = fall = 1): one verdict moves it.
    const to = m.health.checked(live ? 'ok' : 'failed');
    if (!to) return;
    this.deps.events.emit({ type: 'pool-member', at: this.deps.clock.wallNow(), route: p.pool.route, member: member.key, from, to, cause });
    if (to === 'down' && p.pool.settings.failover === 'move') for (const c of [...m.channels]) c.move();
  }

  async #open(link: AgentLink, key: string, group: AgentGroup, m: Publish): Promise<AgentPool | PoolRefusal> {
    const name = m.serverName !== undefined ? `${group.name}/${describeRemote(m)}` : `${group.name}/${m.transport}:${m.remote.port}`;
    const settings: PoolSettings = {
      balance: group.balance ?? (m.transport === 'udp' ? 'source-hash' : 'least-conn'),
      passive: DEFAULT_PASSIVE,
      failover: group.udpFailover,
    };
    const { clock, events } = this.deps;
    const pool = new UpstreamPool(name, [], settings, { clock, events });
    const dialers = { stream: new PoolStreamDialer(pool, clock, events), datagram: new PoolDatagramDialer(pool, clock) };
    const p = new AgentPool(key, group, m.transport, pool, dialers);
    const drop = () => {
      dialers.stream.close();
      dialers.datagram.close();
      pool.close();
    };
    try {
      const route = await this.deps.listen(link, name, m, dialers);
      if (!('close' in route)) {
        drop();
        return route;
      }
      p.route = route;
    } catch (err) {
      drop();
      const code = errnoCode(isSluiceError(err) ? err.cause : err);
      const message = code === 'EADDRINUSE' || code === 'EACCES'
        ? `${m.transport} port ${m.remote.port} is in use (by a service that is not a member of group "${group.name}")`
        : `cannot listen on ${m.remote.address}:${m.remote.port}: ${(err as Error).message}`;
      return { code: 'port-in-use', message };
    }
    this.#pools.set(key, p);
    return p;
  }

  async #leave(p: AgentPool, key: string): Promise<void> {
    const member = p.members.get(key);
    if (!member) return;
    p.members.delete(key);
    // Down first, so live UDP sessions move while the member's channels still exist; then it drains.
    member.leaving = true;
    this.#judge(p, member, 'left');
    p.pool.update(this.#specs(p), p.pool.settings);
    await this.#closeIfEmpty(p);
  }

  /** The last member left: the listener closes (`route-down`) and the pool's timers stop. */
  async #closeIfEmpty(p: AgentPool): Promise<void> {
    if (p.members.size > 0 || this.#pools.get(p.remoteKey) !== p) return;
    this.#pools.delete(p.remoteKey);
    p.dialers.stream.close();
    p.dialers.datagram.close();
    p.pool.close();
    const route = p.route!;
    this.deps.closing?.(route);
    await route.close('upstream-closed');
    this.deps.closed(route);
  }

  #specs(p: AgentPool): MemberSpec[] {
    return [...p.members.values()].map((member) => agentMember(member.key, member.link, member.service.serviceId));
  }
}

/** An agent's service as a pool member: a stream or a connectee tag of its link, checked by the agent itself. */
function agentMember(key: string, link: AgentLink, serviceId: number): MemberSpec {
  return {
    key,
    label: key,
    weight: 1,
    backup: false,
    ways: {
      dial: async (opts) => ({ stream: await link.openStream(serviceId, opts.client ?? UNSPECIFIED, opts.local ?? UNSPECIFIED, opts), remote: link.remote }),
      open: async (receiver, opts) => {
        opts.signal.throwIfAborted();
        return link.openDatagram(serviceId, opts.client ?? UNSPECIFIED, receiver);
      },
    },
  };
}

function remoteKey(m: Publish): string {
  return m.serverName !== undefined ? `${m.transport}|name|${m.serverName}` : `${m.transport}|${m.remote.address}|${m.remote.port}`;
}

/** `tls://name` or `quic://name`. */
function describeRemote(m: Publish): string {
  return `${m.transport === 'tcp' ? 'tls' : 'quic'}://${m.serverName}`;
}

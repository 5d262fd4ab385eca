import { ipv4PortKey, type Endpoint, type HostPort } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { ExposeConfig } from '../config/expose-config.js';
import type { EventStream } from '../observe/events.js';
import type { DatagramOrigin, StreamOpen, StreamResetCode } from '../protocol/tunnel/index.js';
import { UdpSessionTable, type UdpClientSide } from '../session/udp-session-table.js';
import type { UdpSession } from '../session/udp-session.js';
import { udpLimits, type UdpSessionPolicy } from '../session/session-policy.js';
import type { DatagramDialer, StreamDialer } from '../upstream/dialer.js';
import type { TunnelStream } from '../upstream/agent/tunnel-stream.js';
import type { DatagramSink } from './datagram-path.js';
import { FairSlot, slotDrops, type SendBudget } from '../upstream/agent/send-budget.js';
import { AdmissionLimits } from '../admission/limits.js';
import type { SessionBudget, TunnelEnd } from '../datapath/offload.js';
import { serveLocalStream } from './local-stream.js';
import { refuseDataStream, serveLocalDataStream } from './local-data-stream.js';
import { serveLocalTrunkStream } from './local-trunk-stream.js';
import type { StreamTrunk } from '../datapath/stream-trunk.js';
import type { DataStreamStops } from './data-stream-stops.js';
import type { AgentDataConn } from './data-conn-pool.js';
import type { StreamDatapath } from '../datapath/stream-datapath.js';
import { jsStreamDatapath } from '../datapath/js-stream-datapath.js';
import { StringPool } from '../session/string-pool.js';

export interface LocalServicesDeps {
  readonly agent: string;
  readonly clock: Clock;
  readonly events: EventStream;
  readonly nextFlowId: () => number;
  readonly streamDialer: StreamDialer;
  /** How local services are dialed for streams on data connections (the node's; js when absent). */
  readonly streamDatapath?: StreamDatapath;
  readonly datagramDialer: DatagramDialer;
  /** Sends one datagram of `tag` to the gateway. */
  readonly send: (tag: number, payload: Buffer) => void;
  readonly sendClose: (tag: number) => void;
  /** What may go toward the gateway and peers, shared fairly among the sessions; absent = no budget. */
  readonly budget?: SendBudget;
  /** The tunnel side of `tag` for the native batch (datapath/offload.ts), or null while it needs JavaScript. */
  readonly offloadEnd?: (tag: number, budget: SessionBudget) => TunnelEnd | null;
}

/**
 * One public client of an exposed UDP service at the agent, under the gateway's tag: found by tag
 * (LocalServices), and from its session (UdpSession.clientRef, set when the session is made; by
 * client key through the service's session table). It is also the session's place in the agent's
 * send budget (a FairSlot), so a session costs one object and one map entry here besides its
 * UdpSession.
 */
class ClientEntry extends FairSlot {
  /** Its session once the upstream channel is open (until it closes). */
  session: UdpSession | null = null;

  constructor(
    readonly service: ExposedService,
    /** The client's address (shared with its other sessions' entries) and port, from the datagram origin. */
    readonly address: string,
    readonly port: number,
    public tag: number,
  ) {
    super();
  }
}

/** The agent's entry of session `s` (made before it), or undefined for a session of no entry. */
const entryOf = (s: UdpSession): ClientEntry | undefined => (s.clientRef instanceof ClientEntry ? s.clientRef : undefined);

/** One exposed service at the agent: its config, its id in PUBLISH, where the gateway bound it. */
export class ExposedService {
  /** The public address the gateway bound for it (PUBLISH_OK); kept across a reconnect until the next answer. */
  bound: Endpoint | undefined;
  /** The agent's own check of the local service, for a pool member with `health` (local-health.ts). */
  localHealth: { readonly report: { readonly up: boolean; readonly message: string } | undefined } | undefined;
  /** The gateway's latest PUBLISH_ERROR for it; cleared by a PUBLISH_OK. */
  refusal: { readonly code: string; readonly message: string } | undefined;
  /** The agent's UDP sessions toward the local service, one per public client, with the service's udp rules. */
  readonly table: UdpSessionTable | undefined;
  /** A UDP range service's ports, each with its own session table (made at its first client), by public port. */
  readonly members = new Map<number, ExposedService>();

  constructor(
    readonly id: number,
    readonly config: ExposeConfig,
    table: (svc: ExposedService) => UdpSessionTable | undefined,
    /** For one port of a range service: that public port (`config.local` is already its local port). */
    readonly publicPort?: number,
  ) {
    this.table = table(this);
  }

  /** The local service for public `port` of this service: mapped by offset in a range; undefined when outside it. */
  localFor(port: number): HostPort | undefined {
    const c = this.config;
    if (c.remotePorts === undefined) return c.local;
    const offset = port - (this.bound?.port ?? c.remote?.port ?? 0);
    if (offset < 0 || offset >= c.remotePorts) return undefined;
    return c.localRange ? { host: c.local.host, port: c.local.port + offset } : c.local;
  }
}

/** Closed tags remembered (a few hundred bytes each at most). */
const RECENTLY_CLOSED_TAGS = 1024;

const keyOf = (address: string, port: number): number | string => {
  const k = ipv4PortKey(address, port);
  return k >= 0 ? k : `${address}|${port}`;
};

/**
 * The agent's side of its exposed services (docs/expose.md): TCP streams from the gateway are
 * dialed to the local service (PROXY v1/v2 first when configured) and relayed with half-close;
 * UDP connectee tags become sessions of an ordinary UdpSessionTable (idle timeout, caps, rates,
 * PROXY v2 per datagram, events), keyed by the real client from the datagram origin.
 */
export class LocalServices implements DatagramSink {
  readonly services: ExposedService[];
  readonly #byId = new Map<number, ExposedService>();
  readonly #tags = new Map<number, ClientEntry>();
  readonly #stops = new Set<(reason: 'shutdown') => void>();
  /** Client address strings shared by the entries (one copy per address). */
  readonly #strings = new StringPool();

  constructor(
    configs: readonly ExposeConfig[],
    private readonly deps: LocalServicesDeps,
  ) {
    this.services = configs.map((c, i) => new ExposedService(i + 1, c, (svc) => (c.transport === 'udp' && c.remotePorts === undefined ? this.#table(svc, svc) : undefined)));
    for (const s of this.services) this.#byId.set(s.id, s);
  }

  /** Tags this end closed lately, so a datagram that crossed the DATAGRAM_CLOSE is not lost. */
  readonly #recentlyClosed = new Map<number, ClientEntry>();

  #rememberClosed(tag: number, owner: ClientEntry): void {
    this.#recentlyClosed.set(tag, owner);
    if (this.#recentlyClosed.size > RECENTLY_CLOSED_TAGS) this.#recentlyClosed.delete(this.#recentlyClosed.keys().next().value!);
  }

  get tagCount(): number {
    return this.#tags.size;
  }

  /** Every service with a UDP session table: single-port services and the ports of ranges. */
  *#tables(): IterableIterator<ExposedService & { readonly table: UdpSessionTable }> {
    for (const svc of this.services) {
      if (svc.table) yield svc as ExposedService & { readonly table: UdpSessionTable };
      for (const m of svc.members.values()) yield m as ExposedService & { readonly table: UdpSessionTable };
    }
  }

  /** The open UDP sessions toward local services (route `<agent>/<service>`), for the metrics' live counters. */
  *udpSessions(): IterableIterator<UdpSession> {
    for (const svc of this.#tables()) yield* svc.table.sessions();
  }

  /** Open UDP sessions per service route (a range's ports summed), for `sluice_sessions_active`. */
  activeCounts(): { route: string; proto: 'udp'; active: number }[] {
    const by = new Map<string, number>();
    for (const svc of this.#tables()) by.set(svc.table.policy.name, (by.get(svc.table.policy.name) ?? 0) + svc.table.size);
    return [...by].map(([route, active]) => ({ route, proto: 'udp' as const, active }));
  }

  // ---- UDP ----

  onGatewayDatagram(tag: number, origin: DatagramOrigin | undefined, payload: Buffer): void {
    let owner = this.#tags.get(tag);
    if (owner === undefined && origin === undefined) {
      // A datagram that crossed our DATAGRAM_CLOSE: serve it (a new session); the gateway re-tags.
      owner = this.#recentlyClosed.get(tag);
      if (owner === undefined) return this.deps.sendClose(tag);
      this.#recentlyClosed.delete(tag);
      // A fresh entry: the closed one's budget place and session belong to the session that ended.
      owner = new ClientEntry(owner.service, owner.address, owner.port, tag);
      this.#tags.set(tag, owner);
    }
    if (owner === undefined) {
      const parent = origin ? this.#byId.get(origin.serviceId) : undefined;
      const svc = parent && this.#portOf(parent, origin!.port);
      if (!origin || !svc || !svc.table) return this.deps.sendClose(tag);
      const live = svc.table.find(keyOf(origin.client.address, origin.client.port));
      const previous = live === undefined ? undefined : entryOf(live);
      if (previous !== undefined) {
        // The gateway re-tagged this client: the same session and budget place, under the new tag.
        this.#tags.delete(previous.tag);
        previous.tag = tag;
        owner = previous;
      } else {
        owner = new ClientEntry(svc, this.#strings.intern(origin.client.address), origin.client.port, tag);
      }
      this.#tags.set(tag, owner);
    }
    const table = owner.service.table!;
    table.onDatagram(payload, owner.address, owner.port);
    // Until its channel opens, the entry is tied to the session the datagram made (or found).
    if (owner.session === null) {
      const s = table.find(keyOf(owner.address, owner.port));
      if (s !== undefined && s.clientRef === null) s.clientRef = owner;
    }
  }

  onGatewayClose(tag: number): void {
    const owner = this.#tags.get(tag);
    if (!owner) return;
    this.#tags.delete(tag);
    const s = owner.session;
    if (s) owner.service.table!.end(s, 'client-closed');
  }

  /** The gateway did not resume: every tag is meaningless now, so every UDP session ends. */
  resetUdp(): void {
    this.#tags.clear();
    this.#recentlyClosed.clear();
    for (const svc of this.#tables()) {
      for (const s of [...svc.table.sessions()]) svc.table.end(s, 'upstream-closed');
    }
  }

  /** Caps and rates of each UDP range service, shared by the session tables of its ports (a cap is per service). */
  readonly #rangeLimits = new Map<ExposedService, AdmissionLimits>();

  /**
   * The service that serves public `port` of `svc`: itself for a single-port service; for a range,
   * the table of that port (made now at its first client), undefined when the port is not in the range.
   */
  #portOf(svc: ExposedService, port: number | undefined): ExposedService | undefined {
    if (svc.config.remotePorts === undefined) return svc;
    if (port === undefined) return undefined;
    const known = svc.members.get(port);
    if (known) return known;
    const local = svc.localFor(port);
    if (local === undefined) return undefined;
    const member = new ExposedService(svc.id, { ...svc.config, local }, (m) => this.#table(m, svc), port);
    svc.members.set(port, member);
    return member;
  }

  #table(svc: ExposedService, parent: ExposedService): UdpSessionTable {
    const c = svc.config;
    const { send, sendClose, budget } = this.deps;
    const policy = exposedUdpPolicy(this.deps.agent, c, svc.publicPort);
    let pooled: { limits: AdmissionLimits; bandwidth: null } | undefined;
    if (svc !== parent) {
      let limits = this.#rangeLimits.get(parent);
      if (!limits) this.#rangeLimits.set(parent, (limits = new AdmissionLimits(policy.limits, this.deps.clock)));
      pooled = { limits, bandwidth: null };
    }
    // A session's entry while it is current (its tag not closed by the gateway, nor reset).
    const current = (s: UdpSession): ClientEntry | undefined => {
      const e = entryOf(s);
      return e !== undefined && this.#tags.get(e.tag) === e ? e : undefined;
    };
    // The service's clients are behind the gateway: a reply goes out under the client's tag, and
    // each session's channel reports its end so the gateway hears DATAGRAM_CLOSE for the tag.
    const clients: UdpClientSide = {
      send: (s, buf) => {
        const e = current(s);
        if (e === undefined) return;
        // Before sealing: a session flooding from the local service loses its own excess only.
        if (budget && e.session !== null && !budget.admit(e, policy.name)) return;
        send(e.tag, buf);
      },
      // The public address the client sent to (a PROXY v2 header's destination): the port's own in a range.
      local: () => {
        const bound = parent.bound ?? { address: '0.0.0.0', port: c.remote?.port ?? 0, family: 4 as const };
        return svc.publicPort === undefined ? bound : { ...bound, port: svc.publicPort };
      },
      channelOpened: (s) => {
        const e = current(s);
        if (e !== undefined) e.session = s;
      },
      drops: (s) => {
        const e = current(s);
        return budget && e !== undefined && e.session === s ? slotDrops(e) : undefined;
      },
      offloadEnd: (s) => {
        const e = current(s);
        if (e === undefined || this.deps.offloadEnd === undefined) return null;
        const tag = e.tag;
        if (!budget || e.session === null) return this.deps.offloadEnd(tag, { grant: () => -1 });
        const fair = e;
        return this.deps.offloadEnd(tag, {
          grant: (want) => budget.take(fair, want),
          pools: budget.pools,
          charge: (n) => budget.charge(fair, n),
          bank: () => fair.bank,
          dropped: (b, sh, st) => budget.countDrops(fair, b, sh, policy.name, st),
        });
      },
      channelClosed: (s) => {
        const e = current(s);
        if (e === undefined) return;
        if (e.session === s) e.session = null;
        const tag = e.tag;
        this.#tags.delete(tag);
        this.#rememberClosed(tag, e);
        sendClose(tag);
      },
    };
    const { clock, events, nextFlowId } = this.deps;
    return new UdpSessionTable(policy, { clock, events, nextFlowId, dialer: this.deps.datagramDialer, ...(pooled ? { pooled } : {}) }, clients);
  }

  // ---- TCP ----

  /** A public client connected to a TCP service: dial the local service, then accept or reset. */
  onStreamOpen(stream: TunnelStream, m: StreamOpen, accept: (s: TunnelStream) => void): void {
    const svc = this.#byId.get(m.serviceId);
    if (!svc || svc.config.transport !== 'tcp') return stream.reset('unknown-service');
    // In a range, the public port the client connected to (STREAM_OPEN's server) picks the local port.
    const target = svc.localFor(m.server.port);
    if (target === undefined) return stream.reset('unknown-service');
    serveLocalStream(this.deps.streamDialer, svc.config, target, stream, m, accept, (stop) => this.#stops.add(stop), (stop) => this.#stops.delete(stop), this.deps.streamDatapath);
  }

  /**
   * A public client whose stream rides data connection `d` (docs/tunnel-protocol.md, "Data
   * connections"): dial the local service, join it to `d`, then answer accept or reset. Without
   * `d` (the gateway named a connection this end no longer has) the stream is reset. `hooks`
   * (data-stream-stops.ts) hear its stop when it starts and its end.
   */
  onDataStreamOpen(m: StreamOpen, d: AgentDataConn | undefined, answer: (reset?: StreamResetCode) => void, hooks?: ReturnType<DataStreamStops['track']>): void {
    const svc = this.#byId.get(m.serviceId);
    const target = svc && svc.config.transport === 'tcp' ? svc.localFor(m.server.port) : undefined;
    const { started, ended } = this.#tracked(hooks);
    if (!d) {
      hooks?.ended();
      return answer('internal');
    }
    if (target === undefined) return refuseDataStream(this.deps.clock, d, 'unknown-service', answer, started, ended);
    serveLocalDataStream(this.deps.streamDialer, this.deps.streamDatapath ?? jsStreamDatapath, this.deps.clock, svc!.config, target, m, d, answer, started, ended);
  }

  /** A public client whose stream rides `trunk` (docs/tunnel-protocol.md, "Trunks"): as onDataStreamOpen. */
  onTrunkStreamOpen(m: StreamOpen, trunk: StreamTrunk, answer: (reset?: StreamResetCode) => void, hooks?: ReturnType<DataStreamStops['track']>): void {
    const svc = this.#byId.get(m.serviceId);
    const target = svc && svc.config.transport === 'tcp' ? svc.localFor(m.server.port) : undefined;
    if (target === undefined) {
      hooks?.ended();
      return answer('unknown-service');
    }
    const { started, ended } = this.#tracked(hooks);
    serveLocalTrunkStream(this.deps.streamDialer, this.deps.streamDatapath ?? jsStreamDatapath, svc!.config, target, m, trunk, answer, started, ended);
  }

  /** A stream's stop kept for shutdown, and told to `hooks` (data-stream-stops.ts). */
  #tracked(hooks?: ReturnType<DataStreamStops['track']>): { started: (stop: (reason: 'shutdown') => void) => void; ended: (stop: (reason: 'shutdown') => void) => void } {
    return {
      started: (stop) => {
        this.#stops.add(stop);
        hooks?.started(stop);
      },
      ended: (stop) => {
        this.#stops.delete(stop);
        hooks?.ended();
      },
    };
  }

  /** Ends every local connection and session. */
  close(): void {
    for (const stop of [...this.#stops]) stop('shutdown');
    for (const svc of this.#tables()) svc.table.close('shutdown');
    this.deps.budget?.close();
  }
}

/**
 * The session policy of an exposed UDP service at the agent, from its `expose` entry: its `udp`
 * rules, and PROXY v2 toward the local service when configured. No header is read here (the
 * gateway hands over the real client), so nobody is trusted to send one.
 */
export function exposedUdpPolicy(agent: string, c: ExposeConfig, publicPort?: number): UdpSessionPolicy {
  return {
    name: `${agent}/${c.name}`,
    ...(publicPort !== undefined ? { listenPort: publicPort } : {}),
    upstream: c.local,
    origin: undefined,
    limits: udpLimits(c.udp),
    bandwidth: undefined,
    idleTimeoutMs: c.udp.idleTimeoutMs,
    udp: c.udp,
    proxyProtocol: c.proxyProtocol === 'v2' ? { accept: [], maxHeaderBytes: 0, send: 'v2', udp: c.proxyProtocolUdp } : undefined,
  };
}

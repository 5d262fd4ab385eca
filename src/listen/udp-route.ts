import { formatListen, type Endpoint } from '../core/address.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { EndReason } from '../observe/events.js';
import { UdpSessionTable, type UdpClientSide, type UdpTableDeps } from '../session/udp-session-table.js';
import type { UdpSession } from '../session/udp-session.js';
import type { LiveSessions } from '../session/udp-client-side.js';
import { udpPolicyOf, type ListenerConfig } from '../session/session-policy.js';
import type { UdpDatapath, UdpListener, UdpSender } from '../datapath/udp-datapath.js';
import type { PlainEnd } from '../datapath/offload.js';
import { jsDatapath } from '../datapath/js-datapath.js';
import type { RouteRuntime, SessionInfo } from './route.js';
import type { Admitter } from '../admission/admitter.js';
import type { ReverdictCount } from '../admission/reverdict.js';
import { ClientIsolation, HEAVY_DATAGRAMS } from './udp-isolation.js';

export type UdpRouteDeps = UdpTableDeps & { readonly datapath?: UdpDatapath };

/** A route's clients are behind its listener socket: replies go out through it. */
export class ListenerClients implements UdpClientSide {
  constructor(
    private readonly listener: UdpSender,
    /** Clients over `udp.isolateAbove` get a socket of their own (udp-isolation.ts); absent: never. */
    readonly isolation?: ClientIsolation,
  ) {}

  send(s: UdpSession, buf: Buffer): void {
    this.listener.send(buf, s.replyPort, s.replyAddress);
  }

  local(): Endpoint {
    return this.listener.local;
  }

  /** The client behind this listener is the plain side of a tunnel session (an exposure's public listener). */
  offloadEnd(s: UdpSession): PlainEnd {
    return { kind: 'client', listener: this.isolation?.socketOf(s) ?? this.listener, address: s.replyAddress, port: s.replyPort };
  }

  swept(live: LiveSessions, sweepMs: number, tick: number): void {
    this.isolation?.swept(live, sweepMs, tick);
  }

  channelClosed(s: UdpSession): void {
    this.isolation?.ended(s);
  }

  heavySource(s: UdpSession): void {
    this.isolation?.heavy(s);
  }
}

/**
 * A UDP listener feeding a session table. The socket stays open while the route drains, because
 * live sessions still receive their clients' datagrams through it. Built in order: the socket is
 * bound, the table is made with it (replies go out through it), then datagrams flow to the table.
 */
export class UdpRoute<C extends ListenerConfig = ListenerConfig> implements RouteRuntime<C> {
  #closed: Promise<void> | undefined;
  #route: C;
  private readonly table: UdpSessionTable;

  private constructor(
    route: C,
    private readonly listener: UdpListener<UdpSessionTable>,
    private readonly isolation: ClientIsolation | undefined,
  ) {
    this.#route = route;
    this.table = listener.receiver;
  }

  static async start<C extends ListenerConfig>(route: C, deps: UdpRouteDeps): Promise<UdpRoute<C>> {
    const policy = udpPolicyOf(route);
    const dp = deps.datapath ?? jsDatapath;
    let self: UdpRoute<C> | undefined;
    let isolation: ClientIsolation | undefined;
    // Where the datapath can give a client its own socket; not behind a PROXY sender (one address for many clients).
    const isolate = dp.isolate && !route.proxyProtocol?.accept.length ? dp.isolate.bind(dp) : undefined;
    let listener: UdpListener<UdpSessionTable>;
    try {
      listener = await dp.listen(route.listen.host, route.listen.port, (bound) => {
        if (isolate) {
          const report = { events: deps.events, clock: deps.clock, route: route.name };
          isolation = new ClientIsolation((address, port, rcvbuf) => isolate(bound, address, port, rcvbuf), () => (self ?? { config: route }).config.udp.isolateAbove ?? 0, report);
          dp.watchSources?.(bound, HEAVY_DATAGRAMS);
        }
        return new UdpSessionTable(policy, deps, new ListenerClients(bound, isolation));
      });
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_BIND', `route "${route.name}": cannot listen on ${formatListen(route.listen)}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    return (self = new UdpRoute(route, listener, isolation));
  }

  /** Clients with a socket of their own now (udp-isolation.ts). */
  get isolated(): number {
    return this.isolation?.isolated ?? 0;
  }

  get local(): Endpoint {
    return this.listener.local;
  }

  get name(): string {
    return this.#route.name;
  }

  get config(): C {
    return this.#route;
  }

  get active(): number {
    return this.table.size;
  }

  update(route: C, admit: Admitter | undefined): void {
    this.#route = route;
    this.table.update(udpPolicyOf(route), admit);
  }

  reverdict(): ReverdictCount {
    return this.table.reverdict();
  }

  drain(): Promise<void> {
    return this.table.drain();
  }

  close(reason: EndReason): Promise<void> {
    this.#closed ??= (async () => {
      this.table.close(reason);
      this.isolation?.closeAll();
      await this.listener.close();
    })();
    return this.#closed;
  }

  sessions(): SessionInfo[] {
    return udpSessionInfos(this.table);
  }
}

/** The admin view of a UDP session table's sessions. */
export function udpSessionInfos(table: UdpSessionTable): SessionInfo[] {
  return [...table.sessions()].map((s) => ({
    id: s.id,
    route: s.route,
    proto: 'udp',
    client: s.client,
    upstream: s.upstream,
    state: s.state,
    startedAt: s.startedWall,
    origin: s.origin,
    listenPort: s.listenPort,
    ...s.counters(),
  }));
}

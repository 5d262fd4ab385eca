import { formatListen, type Endpoint } from '../core/address.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { EndReason } from '../observe/events.js';
import { UdpSessionTable, type UdpClientSide, type UdpTableDeps } from '../session/udp-session-table.js';
import type { UdpSession } from '../session/udp-session.js';
import { udpPolicyOf, type ListenerConfig } from '../session/session-policy.js';
import type { UdpDatapath, UdpListener, UdpSender } from '../datapath/udp-datapath.js';
import type { PlainEnd } from '../datapath/offload.js';
import { jsDatapath } from '../datapath/js-datapath.js';
import type { RouteRuntime, SessionInfo } from './route.js';
import type { Admitter } from '../admission/admitter.js';
import type { ReverdictCount } from '../admission/reverdict.js';

export type UdpRouteDeps = UdpTableDeps & { readonly datapath?: UdpDatapath };

/** A route's clients are behind its listener socket: replies go out through it. */
export class ListenerClients implements UdpClientSide {
  constructor(private readonly listener: UdpSender) {}

  send(s: UdpSession, buf: Buffer): void {
    this.listener.send(buf, s.replyPort, s.replyAddress);
  }

  local(): Endpoint {
    return this.listener.local;
  }

  /** The client behind this listener is the plain side of a tunnel session (an exposure's public listener). */
  offloadEnd(s: UdpSession): PlainEnd {
    return { kind: 'client', listener: this.listener, address: s.replyAddress, port: s.replyPort };
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
  ) {
    this.#route = route;
    this.table = listener.receiver;
  }

  static async start<C extends ListenerConfig>(route: C, deps: UdpRouteDeps): Promise<UdpRoute<C>> {
    const policy = udpPolicyOf(route);
    let listener: UdpListener<UdpSessionTable>;
    try {
      listener = await (deps.datapath ?? jsDatapath).listen(route.listen.host, route.listen.port, (bound) => new UdpSessionTable(policy, deps, new ListenerClients(bound)));
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_BIND', `route "${route.name}": cannot listen on ${formatListen(route.listen)}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    return new UdpRoute(route, listener);
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

import { formatHostPort, formatListen, type Endpoint } from '../core/address.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { Admitter } from '../admission/admitter.js';
import type { ReverdictCount } from '../admission/reverdict.js';
import { sharedListenKey, sharedListenKeys } from '../config/route-match.js';
import type { RouteConfig } from '../config/types.js';
import { jsDatapath } from '../datapath/js-datapath.js';
import type { UdpListener } from '../datapath/udp-datapath.js';
import type { EndReason } from '../observe/events.js';
import { udpPolicyOf } from '../session/session-policy.js';
import { UdpSessionTable, type UdpClientSide } from '../session/udp-session-table.js';
import type { UdpSession } from '../session/udp-session.js';
import { QuicDemux, type QuicMember } from './quic-demux.js';
import type { RouteRuntime, SessionInfo } from './route.js';
import { udpSessionInfos, type UdpRouteDeps } from './udp-route.js';

/** One bound UDP socket shared by routes picked by QUIC server name, and its demux. */
interface SharedSocket {
  readonly listener: UdpListener<QuicDemux>;
  readonly members: Set<SharedUdpRoute>;
}

/**
 * The node's shared UDP listeners (QUIC routing by name, docs/sni.md), one per address where a
 * udp:// route has `match`: the first route there binds it, the last one to leave closes it.
 * Each route keeps its own session table; the demux hands it the datagrams of the clients it won.
 */
export class SharedUdpListeners {
  readonly #sockets = new Map<string, Promise<SharedSocket>>();
  #keys = new Set<string>();

  plan(routes: readonly RouteConfig[]): void {
    this.#keys = sharedListenKeys(routes);
  }

  wants(route: RouteConfig): boolean {
    return route.listen.transport === 'udp' && (route.match !== undefined || this.#keys.has(sharedListenKey(route.listen)));
  }

  async start(route: RouteConfig, deps: UdpRouteDeps): Promise<RouteRuntime<RouteConfig>> {
    const key = sharedListenKey(route.listen);
    let starting = this.#sockets.get(key);
    if (starting === undefined) {
      starting = bind(route, deps, (s) => idleOf(s));
      this.#sockets.set(key, starting);
      starting.catch(() => this.#sockets.delete(key));
    }
    const socket = await starting;
    const table = new UdpSessionTable(udpPolicyOf(route), deps, new QuicListenerClients(socket.listener));
    const member = new SharedUdpRoute(route, table, socket, () => {
      if (socket.members.size === 0 && this.#sockets.get(key) === starting) this.#sockets.delete(key);
    });
    socket.members.add(member);
    socket.listener.receiver.join(member);
    return member;
  }
}

/**
 * The clients of a shared QUIC address: replies go out through the shared socket, and the
 * server's long headers teach the demux its connection IDs. Sessions stay in JavaScript (no
 * native hand-over): the native batch would forward a client address's datagrams without the
 * demux, so a second connection from that address could not be routed by its own name.
 */
class QuicListenerClients implements UdpClientSide {
  constructor(private readonly shared: UdpListener<QuicDemux>) {}

  send(s: UdpSession, buf: Buffer): void {
    if ((buf[0]! & 0x80) !== 0) this.shared.receiver.learnReply(buf, s.replyAddress, s.replyPort);
    this.shared.send(buf, s.replyPort, s.replyAddress);
  }

  local(): Endpoint {
    return this.shared.local;
  }
}

/** Pins live as long as the longest UDP idle timeout of the routes there (0 = never expire). */
function idleOf(s: SharedSocket): number {
  let idle = 0;
  for (const m of s.members) {
    const t = m.config.udp.idleTimeoutMs;
    if (t <= 0) return 0;
    idle = Math.max(idle, t);
  }
  return idle;
}

async function bind(route: RouteConfig, deps: UdpRouteDeps, pinIdleMs: (s: SharedSocket) => number): Promise<SharedSocket> {
  const members = new Set<SharedUdpRoute>();
  let socket: SharedSocket | undefined;
  let listener: UdpListener<QuicDemux>;
  try {
    listener = await (deps.datapath ?? jsDatapath).listen(route.listen.host, route.listen.port, (bound) =>
      new QuicDemux(`udp://${formatHostPort(bound.local.address, bound.local.port)}`, { clock: deps.clock, events: deps.events, pinIdleMs: () => (socket ? pinIdleMs(socket) : 0) }),
    );
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_BIND', `shared listener ${formatListen(route.listen)}: cannot listen: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
  }
  socket = { listener, members };
  return socket;
}

/** A route on a shared UDP address: its own session table; leaving stops new clients reaching it. */
class SharedUdpRoute implements RouteRuntime<RouteConfig>, QuicMember {
  #route: RouteConfig;
  #left: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  constructor(
    route: RouteConfig,
    readonly receiver: UdpSessionTable,
    private readonly socket: SharedSocket,
    private readonly onLeft: () => void,
  ) {
    this.#route = route;
  }

  get name(): string {
    return this.#route.name;
  }
  get config(): RouteConfig {
    return this.#route;
  }
  get local() {
    return this.socket.listener.local;
  }
  get active(): number {
    return this.receiver.size;
  }
  update(route: RouteConfig, admit: Admitter | undefined): void {
    this.#route = route;
    this.receiver.update(udpPolicyOf(route), admit);
  }
  reverdict(): ReverdictCount {
    return this.receiver.reverdict();
  }
  sessions(): SessionInfo[] {
    return udpSessionInfos(this.receiver);
  }

  /** Stops new clients; the socket stays while any member is there (live sessions answer through it). */
  #leave(): Promise<void> {
    if (this.#left === undefined) {
      this.socket.listener.receiver.leave(this);
      this.socket.members.delete(this);
      this.onLeft();
      this.#left = Promise.resolve();
    }
    return this.#left;
  }

  drain(): Promise<void> {
    // Pinned clients keep reaching the table until it drains: leave only new-client routing.
    this.socket.listener.receiver.leaveNew(this);
    return this.receiver.drain();
  }

  close(reason: EndReason): Promise<void> {
    this.#closed ??= (async () => {
      await this.#leave();
      this.receiver.close(reason);
      if (this.socket.members.size === 0) {
        this.socket.listener.receiver.close();
        await this.socket.listener.close();
      }
    })();
    return this.#closed;
  }
}

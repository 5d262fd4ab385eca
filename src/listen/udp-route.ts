import dgram from 'node:dgram';
import { once } from 'node:events';
import { canonicalIp, formatListen, type Endpoint } from '../core/address.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { RouteConfig } from '../config/types.js';
import type { EndReason } from '../observe/events.js';
import { UdpSessionTable, type UdpTableDeps } from '../session/udp-session-table.js';
import { literalLookup } from '../upstream/direct/resolve.js';
import type { RouteRuntime, SessionInfo } from './route.js';
import type { Admitter } from '../admission/admitter.js';

export type UdpRouteDeps = Omit<UdpTableDeps, 'sendToClient' | 'local'>;

/**
 * A UDP listener feeding a session table. The socket stays open while the route drains, because
 * live sessions still receive their clients' datagrams through it.
 */
export class UdpRoute implements RouteRuntime {
  #closed: Promise<void> | undefined;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly table: UdpSessionTable,
    readonly local: Endpoint,
  ) {}

  static async start(route: RouteConfig, deps: UdpRouteDeps): Promise<UdpRoute> {
    const { host, port } = route.listen;
    const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', lookup: literalLookup as never });
    try {
      // Listen before binding: with a synchronous lookup, 'listening' can fire inside bind().
      const listening = once(socket, 'listening');
      socket.bind({ address: host, port, exclusive: true });
      await listening;
    } catch (err) {
      socket.close();
      throw new SluiceError('SLUICE_ERR_BIND', `route "${route.name}": cannot listen on ${formatListen(route.listen)}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    const a = socket.address();
    const local: Endpoint = { address: canonicalIp(a.address)?.address ?? a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
    const table = new UdpSessionTable(route, {
      ...deps,
      sendToClient: (buf, p, addr) => socket.send(buf, p, addr),
      local: () => local,
    });
    // Send failures (an unreachable client, a full buffer) surface here; they cost one datagram, never the listener.
    socket.on('error', () => table.countSendError());
    socket.on('message', (msg, rinfo) => table.onDatagram(msg, rinfo.address, rinfo.port));
    return new UdpRoute(socket, table, local);
  }

  get name(): string {
    return this.table.route.name;
  }

  get config(): RouteConfig {
    return this.table.route;
  }

  get active(): number {
    return this.table.size;
  }

  update(route: RouteConfig, admit: Admitter | undefined): void {
    this.table.update(route, admit);
  }

  drain(): Promise<void> {
    return this.table.drain();
  }

  close(reason: EndReason): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.table.close(reason);
      this.socket.close(() => resolve());
    });
    return this.#closed;
  }

  sessions(): SessionInfo[] {
    return [...this.table.sessions()].map((s) => ({
      id: s.id,
      route: s.route,
      proto: 'udp',
      client: s.client,
      upstream: s.upstream,
      state: s.state,
      startedAt: s.startedWall,
      ...s.counters(),
    }));
  }
}

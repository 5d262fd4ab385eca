import { formatListen, type Endpoint } from '../core/address.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { RouteConfig } from '../config/types.js';
import type { EndReason } from '../observe/events.js';
import { UdpSessionTable, type UdpTableDeps } from '../session/udp-session-table.js';
import type { UdpDatapath, UdpListener } from '../datapath/udp-datapath.js';
import { jsDatapath } from '../datapath/js-datapath.js';
import type { RouteRuntime, SessionInfo } from './route.js';
import type { Admitter } from '../admission/admitter.js';
import type { ReverdictCount } from '../admission/reverdict.js';

export type UdpRouteDeps = Omit<UdpTableDeps, 'sendToClient' | 'local'> & { readonly datapath?: UdpDatapath };

/**
 * A UDP listener feeding a session table. The socket stays open while the route drains, because
 * live sessions still receive their clients' datagrams through it.
 */
export class UdpRoute implements RouteRuntime {
  #closed: Promise<void> | undefined;

  private constructor(
    private readonly listener: UdpListener,
    private readonly table: UdpSessionTable,
  ) {}

  static async start(route: RouteConfig, deps: UdpRouteDeps): Promise<UdpRoute> {
    let table: UdpSessionTable | undefined;
    let listener: UdpListener;
    try {
      listener = await (deps.datapath ?? jsDatapath).listen(route.listen.host, route.listen.port, {
        onDatagram: (buf, address, port) => table!.onDatagram(buf, address, port),
        onDatagramV4: (buf, ipv4, port) => table!.onDatagramV4(buf, ipv4, port),
        // Send failures (an unreachable client, a full buffer) cost one datagram, never the listener.
        onSendError: () => table?.countSendError(),
      });
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_BIND', `route "${route.name}": cannot listen on ${formatListen(route.listen)}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    const local = listener.local;
    table = new UdpSessionTable(route, { ...deps, sendToClient: (buf, p, addr) => listener.send(buf, p, addr), local: () => local });
    return new UdpRoute(listener, table);
  }

  get local(): Endpoint {
    return this.listener.local;
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
    return [...this.table.sessions()].map((s) => ({
      id: s.id,
      route: s.route,
      proto: 'udp',
      client: s.client,
      upstream: s.upstream,
      state: s.state,
      startedAt: s.startedWall,
      origin: s.origin,
      ...s.counters(),
    }));
  }
}

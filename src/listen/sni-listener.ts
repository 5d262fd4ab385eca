import net from 'node:net';
import { once } from 'node:events';
import { canonicalIp, formatHostPort, formatListen, type Endpoint, type ListenAddress } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { EventStream, RejectReason } from '../observe/events.js';
import { PendingSlots } from '../admission/pending-slots.js';
import { ProxyTrust, startsWithProxySignature } from '../admission/proxy-trust.js';
import { readProxyHeader } from './proxy-header-reader.js';
import { readClientHello } from './read-client-hello.js';
import { pickRoute } from './sni-router.js';
import type { TcpRoute } from './tcp-route.js';

/** How long a client on a shared address has to send its whole ClientHello (after any PROXY header). */
export const CLIENT_HELLO_TIMEOUT_MS = 10_000;
/** Connections whose PROXY header or ClientHello is still awaited, in total and per source address. */
export const PENDING_HELLOS = { max: 4096, maxPerSource: 256 } as const;

export interface SharedListenerDeps {
  readonly clock: Clock;
  readonly events: EventStream;
}

/**
 * One TCP listener shared by several routes that are picked by TLS server name (docs/sni.md).
 * Per connection: the PROXY header when the sender is trusted, then the ClientHello within
 * CLIENT_HELLO_TIMEOUT_MS; the bytes read are put back and the chosen route (`TcpRoute.adopt`)
 * admits, dials and relays as for its own listener. Refusals before a route is chosen are
 * reported under the listen address (`tcp://ip:port`) as the route name.
 */
export class SharedTcpListener {
  readonly #members = new Set<TcpRoute>();
  readonly #pending = new PendingSlots(PENDING_HELLOS);
  readonly #sockets = new Set<net.Socket>();
  #closed: Promise<void> | undefined;
  /** The route name of refusals before a route is chosen: the bound address, `tcp://ip:port`. */
  readonly #label: string;
  /** The trust list compiled for the settings object in force (one per config). */
  #trust: { settings: object; trust: ProxyTrust } | undefined;

  private constructor(
    readonly key: string,
    private readonly server: net.Server,
    readonly local: Endpoint,
    private readonly deps: SharedListenerDeps,
  ) {
    this.#label = `tcp://${formatHostPort(local.address, local.port)}`;
    server.on('connection', (down: net.Socket) => this.#accept(down));
    server.on('error', () => {}); // accept errors (EMFILE) must not end the process
  }

  static async start(key: string, listen: ListenAddress, deps: SharedListenerDeps): Promise<SharedTcpListener> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
    try {
      const listening = once(server, 'listening');
      server.listen({ host: listen.host, port: listen.port, backlog: 4096, exclusive: true });
      await listening;
    } catch (err) {
      server.close();
      throw new SluiceError('SLUICE_ERR_BIND', `shared listener ${formatListen(listen)}: cannot listen: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    const a = server.address() as net.AddressInfo;
    const local: Endpoint = { address: canonicalIp(a.address)?.address ?? a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
    return new SharedTcpListener(key, server, local, deps);
  }

  get members(): number {
    return this.#members.size;
  }

  join(route: TcpRoute): void {
    this.#members.add(route);
  }

  /** Routes no new connection to `route`; the last one out closes the listener (and connections still being read). */
  leave(route: TcpRoute): Promise<void> {
    this.#members.delete(route);
    return this.#members.size === 0 ? this.close() : Promise.resolve();
  }

  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      for (const s of this.#sockets) s.destroy();
      this.server.close(() => resolve());
    });
    return this.#closed;
  }

  #accept(down: net.Socket): void {
    const canon = canonicalIp(down.remoteAddress ?? '');
    if (!canon || this.#closed) {
      down.destroy();
      return;
    }
    down.on('error', () => {});
    const peer: Endpoint = { address: canon.address, port: down.remotePort ?? 0, family: canon.family };
    const pending = this.#pending.admit(peer.address, false, () => down.destroy());
    if (!pending.ok) return this.#reject(down, peer, 'limit-route-sessions', 'too many ClientHellos pending');
    this.#sockets.add(down);
    const release = () => {
      pending.slot.release();
      this.#sockets.delete(down);
    };
    void this.#route(down, peer).finally(release);
  }

  async #route(down: net.Socket, peer: Endpoint): Promise<void> {
    const { clock } = this.deps;
    const pp = this.#members.values().next().value?.config.proxyProtocol;
    let client = peer;
    let destination: Endpoint | undefined;
    if (pp && this.#trust?.settings !== pp) this.#trust = { settings: pp, trust: new ProxyTrust(pp.accept) };
    const trust = pp ? this.#trust!.trust : undefined;
    if (pp && trust?.trusts(peer.address)) {
      const r = await readProxyHeader(down, clock, pp.headerTimeoutMs, pp.maxHeaderBytes);
      if (!r.ok) return this.#reject(down, peer, r.reason);
      const a = r.header.addresses;
      if (a) [client, destination] = [a.source, a.destination];
    }
    if (down.destroyed) return;
    const h = await readClientHello(down, clock, CLIENT_HELLO_TIMEOUT_MS);
    if (!h.ok) {
      if (down.destroyed && h.reason === 'truncated') return this.#reject(down, client, 'client-hello-invalid', 'closed before its ClientHello ended');
      if (trust !== undefined && !trust.empty && startsWithProxySignature(h.seen) === 'yes') return this.#reject(down, client, 'proxy-header-untrusted');
      return this.#reject(down, client, h.reason === 'timeout' ? 'client-hello-timeout' : 'client-hello-invalid', h.reason === 'timeout' ? undefined : h.reason);
    }
    const route = pickRoute(this.#members, h.hello);
    if (route === undefined) return this.#reject(down, client, 'no-route-for-name', h.hello.serverName === undefined ? 'no server name' : `name ${h.hello.serverName}`);
    route.adopt(down, client, destination);
  }

  #reject(down: net.Socket, client: Endpoint, reason: RejectReason, detail?: string): void {
    down.destroy();
    const { clock, events } = this.deps;
    events.emit({ type: 'session-rejected', at: clock.wallNow(), route: this.#label, proto: 'tcp', client, reason, ...(detail ? { detail } : {}) });
  }
}

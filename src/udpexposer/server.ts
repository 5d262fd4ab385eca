import type dgram from 'node:dgram';
import { canonicalIp, type Endpoint } from '../core/address.js';
import { UdpexposerServerCore, type UdpexposerServerCounters, type UdpexposerServerOptions } from './server-core.js';
import { bindDgram, socketSender } from './socket.js';
import type { PeerAddress, UdpexposerDeps } from './types.js';

export interface UdpexposerServerConfig extends UdpexposerServerOptions {
  /** udpexposer's `listen_addr`: an IP literal and port (0 picks a free one). */
  readonly listen: { readonly host: string; readonly port: number };
}

/**
 * The udpexposer server role (`-s`) on one UDP socket that faces the client and every connectee.
 * Lifetime: runs until `signal` aborts or close() is called; `closed` resolves once the socket
 * is closed. close() is idempotent. All protocol logic is in UdpexposerServerCore.
 */
export class UdpexposerServer implements AsyncDisposable {
  readonly local: Endpoint;
  readonly closed: Promise<void>;
  /** Datagrams the socket failed to send (unreachable destinations, closed socket). */
  sendErrors = 0;
  readonly #core: UdpexposerServerCore;
  readonly #socket: dgram.Socket;
  readonly #done: AbortController;

  static async listen(config: UdpexposerServerConfig, deps: UdpexposerDeps, signal: AbortSignal): Promise<UdpexposerServer> {
    const done = new AbortController();
    const socket = await (deps.bindUdp ?? bindDgram)({ host: config.listen.host, port: config.listen.port, signal: AbortSignal.any([signal, done.signal]) });
    return new UdpexposerServer(config, deps, socket, done, signal);
  }

  private constructor(config: UdpexposerServerConfig, deps: UdpexposerDeps, socket: dgram.Socket, done: AbortController, parent: AbortSignal) {
    this.#socket = socket;
    this.#done = done;
    const a = socket.address();
    const ip = canonicalIp(a.address)!;
    this.local = { address: ip.address, port: a.port, family: ip.family };
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    const send = socketSender(socket, () => void this.sendErrors++);
    this.#core = new UdpexposerServerCore(config, { clock: deps.clock, send, onEvent: deps.onEvent, cookieSecret: deps.cookieSecret });
    // ICMP errors surface as 'error' on some platforms; a UDP server must outlive them.
    socket.on('error', () => void this.sendErrors++);
    socket.on('message', (buf, rinfo) => this.#core.handleDatagram(buf, rinfo.address, rinfo.port));
    const onAbort = () => this.close();
    if (parent.aborted) onAbort();
    else parent.addEventListener('abort', onAbort, { once: true });
    void this.closed.then(() => parent.removeEventListener('abort', onAbort));
  }

  get counters(): Readonly<UdpexposerServerCounters> {
    return this.#core.counters;
  }

  get client(): (PeerAddress & { readonly authenticated: boolean }) | undefined {
    return this.#core.client;
  }

  /** Connectees currently in the table. */
  get connectees(): number {
    return this.#core.table.size;
  }

  close(): void {
    if (this.#done.signal.aborted) return;
    this.#done.abort(); // the socket was created with this signal: aborting closes it
    this.#core.table.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.closed;
  }
}

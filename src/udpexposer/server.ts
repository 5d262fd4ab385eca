import type { Endpoint } from '../core/address.js';
import type { Timer } from '../core/clock.js';
import { jsDatapath } from '../datapath/js-datapath.js';
import { tagOffload } from '../datapath/tag-offload.js';
import type { ListenerReceiver, UdpListener } from '../datapath/udp-datapath.js';
import { bindMain } from './bind.js';
import { FOLD_EVERY_MS } from './channel-offload.js';
import type { UdpexposerServerCounters } from './counters.js';
import { UdpexposerServerCore, type UdpexposerServerOptions } from './server-core.js';
import type { PeerAddress, UdpexposerDeps } from './types.js';

export interface UdpexposerServerConfig extends UdpexposerServerOptions {
  /** udpexposer's `listen_addr`: an IP literal and port (0 picks a free one). */
  readonly listen: { readonly host: string; readonly port: number };
}

/**
 * The udpexposer server role (`-s`) on one UDP socket of the datapath that faces the client and
 * every connectee. With the native datapath a batch of datagrams is received, relayed and sent
 * with one call each way; each datagram costs one call into the core and no allocation but the
 * view of a client frame's payload (the tag goes out as the connectee's own two bytes beside the
 * received datagram, which is sent from where it was received).
 *
 * Lifetime: runs until `signal` aborts or close() is called; `closed` resolves once the socket
 * is closed. close() is idempotent. All protocol logic is in UdpexposerServerCore.
 */
export class UdpexposerServer implements AsyncDisposable {
  readonly local: Endpoint;
  readonly closed: Promise<void>;
  /** Which datapath moves this server's datagrams. */
  readonly datapath: 'js' | 'native';
  #sendErrors = 0;
  readonly #core: UdpexposerServerCore;
  readonly #socket: UdpListener;
  #closing = false;
  readonly #resolveClosed: () => void;
  readonly #parent: AbortSignal;
  readonly #onAbort = () => this.close();
  #sweep: Timer | undefined;

  static async listen(config: UdpexposerServerConfig, deps: UdpexposerDeps, signal: AbortSignal): Promise<UdpexposerServer> {
    const datapath = deps.datapath ?? jsDatapath;
    // The core exists before the socket, so the first datagram finds it; its sender reaches the socket once bound.
    let socket: UdpListener | undefined;
    let sendErrors = 0;
    const core = new UdpexposerServerCore(config, {
      clock: deps.clock,
      send: (buf, prefix, port, address) => socket?.send(buf, port, address, prefix),
      onEvent: deps.onEvent,
      cookieSecret: deps.cookieSecret,
      // An established connectee's channel (both ways) in the native batch: connectee and client are both behind the one socket.
      offload:
        datapath.kind === 'native'
          ? (c, client, o) => (socket ? tagOffload({ socket, address: c.address, port: c.port }, { socket, address: client.address, port: client.port }, o) : null)
          : undefined,
    });
    const receiver: ListenerReceiver & { server?: UdpexposerServer } = {
      onDatagram: (buf, address, port) => core.handleDatagram(buf, address, port),
      onDatagramV4: (buf, ipv4, port) => core.handleDatagramV4(buf, ipv4, port),
      onSendError: () => (receiver.server ? receiver.server.#sendErrors++ : sendErrors++),
    };
    socket = await bindMain(datapath, config.listen.host, config.listen.port, receiver);
    const server = new UdpexposerServer(core, socket, datapath.kind, signal);
    if (core.offloads !== null) server.#sweep = deps.clock.setInterval(() => core.offloads!.sweep(), FOLD_EVERY_MS);
    server.#sendErrors = sendErrors;
    receiver.server = server;
    return server;
  }

  private constructor(core: UdpexposerServerCore, socket: UdpListener, kind: 'js' | 'native', parent: AbortSignal) {
    this.#core = core;
    this.#socket = socket;
    this.datapath = kind;
    this.local = socket.local;
    let resolve!: () => void;
    this.closed = new Promise((r) => (resolve = r));
    this.#resolveClosed = resolve;
    this.#parent = parent;
    if (parent.aborted) this.close();
    else parent.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Datagrams the socket failed to send (unreachable or forbidden destinations, full buffers), in JavaScript or in the native batch. */
  get sendErrors(): number {
    const o = this.#core.offloads;
    o?.foldAll();
    return this.#sendErrors + (o?.sendErrors ?? 0);
  }

  /** With the native batch's counts folded in. */
  get counters(): Readonly<UdpexposerServerCounters> {
    this.#core.offloads?.foldAll();
    return this.#core.counters;
  }

  /** Connectees whose channel the native batch carries. */
  get offloaded(): number {
    return this.#core.offloads?.size ?? 0;
  }

  get client(): (PeerAddress & { readonly authenticated: boolean }) | undefined {
    return this.#core.client;
  }

  /** Connectees currently in the table. */
  get connectees(): number {
    return this.#core.table.size;
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#parent.removeEventListener('abort', this.#onAbort);
    this.#sweep?.cancel();
    this.#core.offloads?.removeAll();
    this.#core.table.clear();
    void this.#socket.close().then(this.#resolveClosed, this.#resolveClosed);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.closed;
  }
}

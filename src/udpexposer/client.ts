import type dgram from 'node:dgram';
import { canonicalIp, type Endpoint, type HostPort } from '../core/address.js';
import { SluiceError } from '../core/errors.js';
import type { Timer } from '../core/clock.js';
import { MAX_PAYLOAD_BYTES, TAG_BYTES } from '../protocol/udpexposer/constants.js';
import { decodeFrame, hasTokenPrefix, tagBytes } from '../protocol/udpexposer/frame.js';
import type { UdpexposerKey } from '../protocol/udpexposer/key.js';
import { encodeRequestToken, verifyReplyToken } from '../protocol/udpexposer/token.js';
import { peerKey } from './endpoint-key.js';
import { bindDgram, socketSender } from './socket.js';
import type { UdpexposerDeps } from './types.js';
import { WorkerTable, type Worker } from './worker-table.js';

export interface UdpexposerClientConfig {
  /** udpexposer's `listen_addr`: where the main socket (facing the server) binds. */
  readonly listen: HostPort;
  /** `-a`: the server, an IP literal. */
  readonly server: HostPort;
  /** `-c`: the real server being exposed, an IP literal. */
  readonly target: HostPort;
  /** `-n`: most worker sockets at once (one per connectee tag). */
  readonly maxClients: number;
  /** `-i`: keepalive period; the first keepalive goes out at start. */
  readonly pingIntervalMs: number;
  /** `-P`: password mode when present. */
  readonly key?: UdpexposerKey;
  /** Largest payload forwarded either way. Default 2046 (what a real udpexposer server can carry). */
  readonly maxPayloadBytes?: number;
  /** Payloads held per worker while its socket is being bound. Default 8. */
  readonly workerQueue?: number;
  /** Password mode: after this many keepalives in a row without a signed answer, a `registration-unanswered` event. Default 3. */
  readonly warnAfterUnanswered?: number;
}

export type ClientDropReason =
  /** A datagram on the main socket from anyone but the server. udpexposer accepts these; Sluice does not. */
  | 'foreign-source'
  /** Two bytes or fewer from the server (udpexposer drops these too). */
  | 'short'
  /** A payload longer than maxPayloadBytes (udpexposer would cut it short). */
  | 'too-big'
  /** A worker's bind queue was full. */
  | 'queue-full'
  /**
   * Password mode: a frame before the server ever answered with a signed token. A server only
   * sends frames to a client it registered, so such a frame is this client's own keepalive
   * coming back as data from a server with another password (udpexposer forwards those).
   */
  | 'unregistered'
  /** Password mode: a token from the server signed with another key. */
  | 'bad-signature';

export interface UdpexposerClientCounters {
  keepalivesSent: number;
  retriesAnswered: number;
  registeredReceived: number;
  /**
   * Token-looking datagrams that did not verify. A wrong signature is dropped (`dropped.bad-signature`);
   * a malformed one is handled as data with tag 0x6579, as udpexposer does.
   */
  invalidTokens: number;
  fromServer: { datagrams: number; bytes: number };
  toTarget: { datagrams: number; bytes: number };
  fromTarget: { datagrams: number; bytes: number };
  toServer: { datagrams: number; bytes: number };
  workersOpened: number;
  workersClosed: number;
  sendErrors: number;
  dropped: Record<ClientDropReason, number>;
}

/**
 * The udpexposer client role (`-c` and `-a`): keeps a NAT mapping open to the server with
 * keepalives, and relays each connectee tag through its own worker socket to the real server.
 *
 * Destinations never come from the network: the main socket sends only to the server (`-a`) and
 * workers only to the target (`-c`), both IP literals from the operator; a tag only selects a
 * worker. Differences from udpexposer, all invisible on the wire:
 *  - the main socket accepts datagrams from the server address only (udpexposer takes any source);
 *  - workers are connected UDP sockets bound to loopback when the target is on loopback (not the
 *    wildcard), so only the target can answer through them (udpexposer README: "worker sockets
 *    may be too permissive");
 *  - payloads over 2046 bytes are dropped and counted instead of cut short;
 *  - password mode: frames are relayed only once the server has answered with a token that
 *    verifies, tokens signed with another key are dropped, and unanswered registrations are
 *    reported (`registration-unanswered`): a wrong -P is said, not looped as data.
 *
 * Lifetime: `signal` or close() stops the keepalives and closes every socket; `closed` resolves
 * when the main socket has closed. close() is idempotent.
 */
export class UdpexposerClient implements AsyncDisposable {
  readonly local: Endpoint;
  readonly closed: Promise<void>;
  readonly counters: UdpexposerClientCounters = {
    keepalivesSent: 0,
    retriesAnswered: 0,
    registeredReceived: 0,
    invalidTokens: 0,
    fromServer: { datagrams: 0, bytes: 0 },
    toTarget: { datagrams: 0, bytes: 0 },
    fromTarget: { datagrams: 0, bytes: 0 },
    toServer: { datagrams: 0, bytes: 0 },
    workersOpened: 0,
    workersClosed: 0,
    sendErrors: 0,
    dropped: { 'foreign-source': 0, short: 0, 'too-big': 0, 'queue-full': 0, unregistered: 0, 'bad-signature': 0 },
  };
  #authenticated = false;
  /** Password mode: the server has sent a token that verifies (Retry or Registered), so it has our key. */
  #serverProven = false;
  /** Password mode: keepalives sent since the last token that verified. */
  #unanswered = 0;
  #warned = false;
  readonly #config: UdpexposerClientConfig;
  readonly #deps: UdpexposerDeps;
  readonly #main: dgram.Socket;
  readonly #done: AbortController;
  readonly #workers: WorkerTable;
  readonly #serverKey: number | string;
  readonly #serverSendAddress: string;
  readonly #target: { readonly address: string; readonly port: number; readonly family: 4 | 6 };
  readonly #keepalive: Buffer;
  readonly #maxPayload: number;
  readonly #send: ReturnType<typeof socketSender>;
  readonly #timer: Timer;

  static async start(config: UdpexposerClientConfig, deps: UdpexposerDeps, signal: AbortSignal): Promise<UdpexposerClient> {
    const server = literal(config.server, '-a server address');
    literal(config.target, '-c local address');
    const listen = literal(config.listen, 'listen address', true);
    if (listen.family === 4 && server.family === 6) {
      throw new SluiceError('SLUICE_ERR_USAGE', 'an IPv6 server (-a) cannot be reached from an IPv4 listen address');
    }
    if (!Number.isInteger(config.maxClients) || config.maxClients < 1) throw new SluiceError('SLUICE_ERR_USAGE', '-n must be at least 1');
    if (!Number.isFinite(config.pingIntervalMs) || config.pingIntervalMs < 1) throw new SluiceError('SLUICE_ERR_USAGE', '-i must be at least 1 ms');
    const done = new AbortController();
    const main = await (deps.bindUdp ?? bindDgram)({ host: listen.address, port: config.listen.port, signal: AbortSignal.any([signal, done.signal]) });
    return new UdpexposerClient(config, deps, main, done, signal);
  }

  private constructor(config: UdpexposerClientConfig, deps: UdpexposerDeps, main: dgram.Socket, done: AbortController, parent: AbortSignal) {
    this.#config = config;
    this.#deps = deps;
    this.#main = main;
    this.#done = done;
    this.#maxPayload = config.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    const a = main.address();
    const ip = canonicalIp(a.address)!;
    this.local = { address: ip.address, port: a.port, family: ip.family };
    const server = canonicalIp(config.server.host)!;
    this.#serverKey = peerKey(server.address, config.server.port)!;
    // A dual-stack (udp6) socket reaches an IPv4 server through its mapped form.
    this.#serverSendAddress = a.family === 'IPv6' && server.family === 4 ? `::ffff:${server.address}` : server.address;
    const target = canonicalIp(config.target.host)!;
    this.#target = { address: target.address, port: config.target.port, family: target.family };
    this.#keepalive = config.key ? encodeRequestToken({ nonce: null }, config.key) : Buffer.alloc(0);
    this.#send = socketSender(main, () => void this.counters.sendErrors++);
    this.#workers = new WorkerTable(config.maxClients, (w) => {
      this.counters.workersClosed++;
      deps.onEvent?.({ type: 'worker-closed', tag: w.tag });
    });
    this.closed = new Promise((resolve) => main.once('close', () => resolve()));
    main.on('error', () => void this.counters.sendErrors++);
    main.on('message', (buf, rinfo) => this.#fromServer(buf, rinfo.address, rinfo.port));
    this.#timer = deps.clock.setInterval(() => this.#sendKeepalive(), config.pingIntervalMs);
    this.#sendKeepalive();
    const onAbort = () => this.close();
    if (parent.aborted) onAbort();
    else parent.addEventListener('abort', onAbort, { once: true });
    void this.closed.then(() => parent.removeEventListener('abort', onAbort));
  }

  /** True once the server has answered `Registered` (password mode). */
  get authenticated(): boolean {
    return this.#authenticated;
  }

  get workers(): number {
    return this.#workers.size;
  }

  close(): void {
    if (this.#done.signal.aborted) return;
    this.#timer.cancel();
    this.#workers.clear();
    this.#done.abort(); // closes the main socket, which was created with this signal
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.closed;
  }

  #sendKeepalive(): void {
    if (this.#config.key !== undefined) {
      if (this.#unanswered >= (this.#config.warnAfterUnanswered ?? 3) && !this.#warned) {
        this.#warned = true;
        this.#deps.onEvent?.({ type: 'registration-unanswered', server: this.#serverPeer(), unanswered: this.#unanswered });
      }
      this.#unanswered++;
    }
    this.counters.keepalivesSent++;
    this.#toServer(this.#keepalive);
  }

  #serverPeer() {
    return { address: canonicalIp(this.#config.server.host)!.address, port: this.#config.server.port };
  }

  #toServer(parts: Buffer | readonly Buffer[]): void {
    this.#send(parts, this.#config.server.port, this.#serverSendAddress);
  }

  #fromServer(buf: Buffer, address: string, port: number): void {
    if (peerKey(address, port) !== this.#serverKey) {
      this.counters.dropped['foreign-source']++;
      return;
    }
    if (buf.length <= TAG_BYTES) {
      this.counters.dropped.short++;
      return;
    }
    const key = this.#config.key;
    if (key !== undefined && hasTokenPrefix(buf)) {
      const r = verifyReplyToken(buf, key);
      if (r.ok) {
        this.#serverProven = true;
        this.#unanswered = 0;
        this.#warned = false;
        if (r.value.kind === 'retry') {
          this.counters.retriesAnswered++;
          this.#toServer(encodeRequestToken({ nonce: r.value.value }, key));
        } else {
          this.counters.registeredReceived++;
          if (!this.#authenticated) {
            this.#authenticated = true;
            this.#deps.onEvent?.({ type: 'authenticated', server: this.#serverPeer() });
          }
        }
        return;
      }
      this.counters.invalidTokens++;
      if (r.reason === 'bad-signature') {
        this.counters.dropped['bad-signature']++;
        return;
      }
    }
    if (key !== undefined && !this.#serverProven) {
      this.counters.dropped.unregistered++;
      return;
    }
    const f = decodeFrame(buf);
    if (f.kind !== 'ok') return; // unreachable: length was checked above
    const { tag, payload } = f.value;
    if (payload.length > this.#maxPayload) {
      this.counters.dropped['too-big']++;
      return;
    }
    this.counters.fromServer.datagrams++;
    this.counters.fromServer.bytes += payload.length;
    const w = this.#workers.get(tag) ?? this.#openWorker(tag);
    if (w.queue !== null) {
      if (w.queue.length < (this.#config.workerQueue ?? 8)) w.queue.push(payload);
      else this.counters.dropped['queue-full']++;
      return;
    }
    this.#toTarget(w, payload);
  }

  #toTarget(w: Worker, payload: Buffer): void {
    this.counters.toTarget.datagrams++;
    this.counters.toTarget.bytes += payload.length;
    try {
      w.socket!.send(payload, (err) => {
        if (err) this.counters.sendErrors++;
      });
    } catch {
      this.counters.sendErrors++;
    }
  }

  #openWorker(tag: number): Worker {
    const w: Worker = { tag, socket: null, queue: [], closed: false };
    this.#workers.add(w);
    this.counters.workersOpened++;
    this.#deps.onEvent?.({ type: 'worker-opened', tag });
    void this.#bindWorker(w);
    return w;
  }

  async #bindWorker(w: Worker): Promise<void> {
    const t = this.#target;
    const loopback = t.family === 4 ? t.address.startsWith('127.') : t.address === '::1';
    const host = loopback ? (t.family === 4 ? '127.0.0.1' : '::1') : t.family === 4 ? '0.0.0.0' : '::';
    let socket: dgram.Socket;
    try {
      socket = await (this.#deps.bindUdp ?? bindDgram)({ host, port: 0, signal: this.#done.signal });
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.connect(t.port, t.address, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch {
      this.counters.sendErrors++;
      this.#workers.delete(w.tag);
      return;
    }
    if (w.closed) {
      socket.close();
      return;
    }
    w.socket = socket;
    // Connected: the kernel delivers only the target's datagrams. ICMP unreachable arrives as
    // 'error' (ECONNREFUSED); the worker stays, as udpexposer's does, in case the target comes back.
    socket.on('error', () => void this.counters.sendErrors++);
    socket.on('message', (msg) => this.#fromTarget(w, msg));
    const queued = w.queue ?? [];
    w.queue = null;
    for (const p of queued) this.#toTarget(w, p);
  }

  #fromTarget(w: Worker, msg: Buffer): void {
    if (w.closed) return;
    if (msg.length > this.#maxPayload) {
      this.counters.dropped['too-big']++;
      return;
    }
    this.counters.fromTarget.datagrams++;
    this.counters.fromTarget.bytes += msg.length;
    this.counters.toServer.datagrams++;
    this.counters.toServer.bytes += msg.length + TAG_BYTES;
    this.#toServer([tagBytes(w.tag), msg]);
  }
}

function literal(hp: HostPort, what: string, allowZeroPort = false): { address: string; family: 4 | 6 } {
  const ip = canonicalIp(hp.host);
  if (!ip) throw new SluiceError('SLUICE_ERR_USAGE', `${what} must be an IP address, got "${hp.host}"`);
  if (!Number.isInteger(hp.port) || hp.port < (allowZeroPort ? 0 : 1) || hp.port > 65535) {
    throw new SluiceError('SLUICE_ERR_USAGE', `${what} has port ${hp.port} out of range`);
  }
  return ip;
}

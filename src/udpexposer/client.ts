import { canonicalIp, type Endpoint, type HostPort } from '../core/address.js';
import { SluiceError } from '../core/errors.js';
import type { Timer } from '../core/clock.js';
import { jsDatapath } from '../datapath/js-datapath.js';
import { tagOffload } from '../datapath/tag-offload.js';
import type { ListenerReceiver, UdpDatapath, UdpListener } from '../datapath/udp-datapath.js';
import { MAX_PAYLOAD_BYTES, TAG_BYTES } from '../protocol/udpexposer/constants.js';
import { hasTokenPrefix } from '../protocol/udpexposer/frame.js';
import type { UdpexposerKey } from '../protocol/udpexposer/key.js';
import { encodeRequestToken, verifyReplyToken } from '../protocol/udpexposer/token.js';
import { bindMain } from './bind.js';
import { FOLD_EVERY_MS } from './channel-offload.js';
import { ClientOffloads } from './client-offloads.js';
import { newClientCounters, type UdpexposerClientCounters } from './counters.js';
import { peerKey } from './endpoint-key.js';
import type { UdpexposerDeps } from './types.js';
import { Worker, WorkerTable, type WorkerOwner } from './worker-table.js';

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
  /**
   * Payloads held per worker while its socket opens. Default 128: a whole native receive batch
   * can carry one new tag's frames (the socket opens when the batch has been dispatched).
   */
  readonly workerQueue?: number;
  /** Password mode: after this many keepalives in a row without a signed answer, a `registration-unanswered` event. Default 3. */
  readonly warnAfterUnanswered?: number;
}

/**
 * The udpexposer client role (`-c` and `-a`): keeps a NAT mapping open to the server with
 * keepalives, and relays each connectee tag through its own worker socket to the real server.
 *
 * Destinations never come from the network: the main socket sends only to the server (`-a`) and
 * workers only to the target (`-c`), both IP literals from the operator; a tag only selects a
 * worker. Differences from udpexposer, all invisible on the wire:
 *  - the main socket accepts datagrams from the server address only (udpexposer takes any source);
 *  - workers are connected UDP sockets (the datapath's `connect`), so the kernel delivers only the
 *    target's datagrams through them (udpexposer README: "worker sockets may be too permissive");
 *  - payloads over 2046 bytes are dropped and counted instead of cut short;
 *  - password mode: frames are relayed only once the server has answered with a token that
 *    verifies, tokens signed with another key are dropped, and unanswered registrations are
 *    reported (`registration-unanswered`): a wrong -P is said, not looped as data.
 *
 * Every socket is on the datapath (deps.datapath): with the native one, a batch of frames from the
 * server goes to the workers' sockets in one flush, and their answers back in another; a frame
 * costs one call and no allocation but the view of its payload (the tag goes out as the worker's
 * own two bytes beside the received datagram). No closure, timer or listener per datagram or
 * per worker: workers hold no AbortSignal, they close with the table.
 *
 * Lifetime: `signal` or close() stops the keepalives and closes every socket; `closed` resolves
 * when the main socket has closed. close() is idempotent.
 */
export class UdpexposerClient implements AsyncDisposable {
  readonly local: Endpoint;
  readonly closed: Promise<void>;
  /** Which datapath moves this client's datagrams. */
  readonly datapath: 'js' | 'native';
  readonly #counters: UdpexposerClientCounters = newClientCounters();
  /** Workers whose channel the native batch carries; null on the js datapath. */
  readonly #offloads: ClientOffloads | null;
  readonly #sweep: Timer | null;
  #authenticated = false;
  /** Password mode: the server has sent a token that verifies (Retry or Registered), so it has our key. */
  #serverProven = false;
  /** Password mode: keepalives sent since the last token that verified. */
  #unanswered = 0;
  #warned = false;
  readonly #config: UdpexposerClientConfig;
  readonly #deps: UdpexposerDeps;
  readonly #datapath: UdpDatapath;
  readonly #main: UdpListener;
  #closing = false;
  readonly #parent: AbortSignal;
  readonly #onAbort = () => this.close();
  readonly #workers: WorkerTable;
  readonly #serverKey: number | string;
  readonly #serverPort: number;
  readonly #serverSendAddress: string;
  readonly #target: Endpoint;
  readonly #keepalive: Buffer;
  readonly #maxPayload: number;
  readonly #queueMax: number;
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
    const datapath = deps.datapath ?? jsDatapath;
    // The receiver reaches the client once it exists; nothing arrives before the first keepalive.
    const receiver: ListenerReceiver & { client?: UdpexposerClient } = {
      onDatagram: (buf, address, port) => void (receiver.client && receiver.client.#fromServer(buf, peerKey(address, port))),
      onDatagramV4: (buf, ipv4, port) => void (receiver.client && receiver.client.#fromServer(buf, ipv4 * 65536 + port)),
      onSendError: () => void (receiver.client && receiver.client.#counters.sendErrors++),
    };
    const main = await bindMain(datapath, listen.address, config.listen.port, receiver);
    return (receiver.client = new UdpexposerClient(config, deps, datapath, main, signal));
  }

  private constructor(config: UdpexposerClientConfig, deps: UdpexposerDeps, datapath: UdpDatapath, main: UdpListener, parent: AbortSignal) {
    this.#config = config;
    this.#deps = deps;
    this.#datapath = datapath;
    this.datapath = datapath.kind;
    this.#main = main;
    this.#parent = parent;
    this.#maxPayload = config.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    this.#queueMax = config.workerQueue ?? 128;
    this.local = main.local;
    const server = canonicalIp(config.server.host)!;
    this.#serverKey = peerKey(server.address, config.server.port)!;
    this.#serverPort = config.server.port;
    // A dual-stack socket reaches an IPv4 server through its mapped form.
    this.#serverSendAddress = main.local.family === 6 && server.family === 4 ? `::ffff:${server.address}` : server.address;
    const target = canonicalIp(config.target.host)!;
    this.#target = { address: target.address, port: config.target.port, family: target.family };
    this.#keepalive = config.key ? encodeRequestToken({ nonce: null }, config.key) : Buffer.alloc(0);
    this.#workers = new WorkerTable(config.maxClients, (w) => {
      this.#offloads?.remove(w);
      this.#counters.workersClosed++;
      deps.onEvent?.({ type: 'worker-closed', tag: w.tag });
    });
    let resolve!: () => void;
    this.closed = new Promise((r) => (resolve = r));
    this.#resolveClosed = resolve;
    this.#offloads =
      datapath.kind === 'native'
        ? new ClientOffloads({
            offload: (w, o) => (w.channel ? tagOffload({ socket: w.channel }, { socket: main, address: this.#serverSendAddress, port: this.#serverPort }, o) : null),
            counters: this.#counters,
            promote: (tag) => void this.#workers.get(tag),
            maxPayload: this.#maxPayload,
            password: config.key !== undefined,
          })
        : null;
    this.#sweep = this.#offloads ? deps.clock.setInterval(() => this.#offloads!.sweep(), FOLD_EVERY_MS) : null;
    this.#timer = deps.clock.setInterval(() => this.#sendKeepalive(), config.pingIntervalMs);
    this.#sendKeepalive();
    if (parent.aborted) this.close();
    else parent.addEventListener('abort', this.#onAbort, { once: true });
  }

  readonly #resolveClosed: () => void;

  /** True once the server has answered `Registered` (password mode). */
  get authenticated(): boolean {
    return this.#authenticated;
  }

  get workers(): number {
    return this.#workers.size;
  }

  /** With the native batch's counts folded in. */
  get counters(): UdpexposerClientCounters {
    this.#offloads?.foldAll();
    return this.#counters;
  }

  /** Workers whose channel the native batch carries. */
  get offloaded(): number {
    return this.#offloads?.size ?? 0;
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#parent.removeEventListener('abort', this.#onAbort);
    this.#timer.cancel();
    this.#sweep?.cancel();
    this.#workers.clear();
    void this.#main.close().then(this.#resolveClosed, this.#resolveClosed);
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
    this.#counters.keepalivesSent++;
    this.#toServer(this.#keepalive, null);
  }

  #serverPeer() {
    return { address: canonicalIp(this.#config.server.host)!.address, port: this.#config.server.port };
  }

  #toServer(buf: Buffer, prefix: Buffer | null): void {
    if (!this.#closing) this.#main.send(buf, this.#serverPort, this.#serverSendAddress, prefix);
  }

  /** A datagram on the main socket from the source with this peerKey. */
  #fromServer(buf: Buffer, source: number | string | undefined): void {
    if (this.#closing) return;
    if (source !== this.#serverKey) {
      this.#counters.dropped['foreign-source']++;
      return;
    }
    if (buf.length <= TAG_BYTES) {
      this.#counters.dropped.short++;
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
          this.#counters.retriesAnswered++;
          this.#toServer(encodeRequestToken({ nonce: r.value.value }, key), null);
        } else {
          this.#counters.registeredReceived++;
          if (!this.#authenticated) {
            this.#authenticated = true;
            this.#deps.onEvent?.({ type: 'authenticated', server: this.#serverPeer() });
          }
        }
        return;
      }
      this.#counters.invalidTokens++;
      if (r.reason === 'bad-signature') {
        this.#counters.dropped['bad-signature']++;
        return;
      }
    }
    if (key !== undefined && !this.#serverProven) {
      this.#counters.dropped.unregistered++;
      return;
    }
    // A frame, read in place: tag (u16 BE) || payload (frame.ts's layout).
    const len = buf.length - TAG_BYTES;
    if (len > this.#maxPayload) {
      this.#counters.dropped['too-big']++;
      return;
    }
    this.#counters.fromServer.datagrams++;
    this.#counters.fromServer.bytes += len;
    const tag = (buf[0]! << 8) | buf[1]!;
    const w = this.#workers.get(tag) ?? this.#openWorker(tag);
    if (w.queue !== null) {
      // The datagram's memory may be reused once this call returns: a queued payload is a copy.
      if (w.queue.length < this.#queueMax) w.queue.push(Buffer.from(buf.subarray(TAG_BYTES)));
      else this.#counters.dropped['queue-full']++;
      return;
    }
    this.#toTarget(w, buf.subarray(TAG_BYTES));
    if (w.offload === null) this.#offloads?.consider(w);
  }

  #toTarget(w: Worker, payload: Buffer): void {
    this.#counters.toTarget.datagrams++;
    this.#counters.toTarget.bytes += payload.length;
    w.channel!.send(payload, null);
  }

  /** What the workers report to; made once per client. */
  readonly #owner: WorkerOwner = {
    fromTarget: (w, msg) => this.#fromTarget(w, msg),
    workerError: () => void this.#counters.sendErrors++,
  };

  #openWorker(tag: number): Worker {
    const w = new Worker(tag, this.#owner);
    this.#workers.add(w);
    this.#counters.workersOpened++;
    this.#deps.onEvent?.({ type: 'worker-opened', tag });
    void this.#bindWorker(w);
    return w;
  }

  async #bindWorker(w: Worker): Promise<void> {
    let channel;
    try {
      // Connected: the kernel delivers only the target's datagrams through it.
      channel = await this.#datapath.connect(this.#target, w);
    } catch {
      this.#counters.sendErrors++;
      if (!w.closed) this.#workers.delete(w.tag);
      return;
    }
    if (w.closed) {
      channel.close();
      return;
    }
    w.channel = channel;
    const queued = w.queue ?? [];
    w.queue = null;
    for (const p of queued) this.#toTarget(w, p);
    // Password mode: only once the server proved its key (before, frames are not relayed at all).
    if (this.#config.key === undefined || this.#serverProven) this.#offloads?.consider(w);
  }

  /** A datagram from the target through worker `w`. */
  #fromTarget(w: Worker, msg: Buffer): void {
    if (msg.length > this.#maxPayload) {
      this.#counters.dropped['too-big']++;
      return;
    }
    this.#counters.fromTarget.datagrams++;
    this.#counters.fromTarget.bytes += msg.length;
    this.#counters.toServer.datagrams++;
    this.#counters.toServer.bytes += msg.length + TAG_BYTES;
    this.#toServer(msg, w.tagBytes);
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

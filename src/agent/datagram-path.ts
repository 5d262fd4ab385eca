import type { Clock, Timer } from '../core/clock.js';
import type { FairDropReason } from '../core/fair-share.js';
import {
  MAX_DATAGRAM_PAYLOAD_BYTES, isTunnelError, readUnverifiedHeader,
  type DatagramKeys, type DatagramOrigin, type DatagramRejectReason, type OpenerOptions, type SealerOptions,
} from '../protocol/tunnel/index.js';
import { canonicalIp, type Endpoint } from '../core/address.js';
import type { UdpDatapath, UdpListener } from '../datapath/udp-datapath.js';
import { tunnelOpener, tunnelSealer, type SocketOpener, type SocketSealer } from '../datapath/tunnel-keys.js';
import type { IceSocket } from '../ice/bases.js';
import { OffloadGroup, type SessionBudget, type TunnelEnd } from '../datapath/offload.js';
import { isTunnelDatagram } from '../protocol/tunnel/index.js';
import { CHANNEL_BACKLOG_BYTES, type ControlChannel } from '../upstream/agent/control-channel.js';

/** Where the agent's datagrams go now (docs/tunnel-protocol.md §7). */
export type DatagramMode = 'udp' | 'tls';

/** Receives the datagrams of exposed UDP services. */
export interface DatagramSink {
  onGatewayDatagram(tag: number, origin: DatagramOrigin | undefined, payload: Buffer): void;
  onGatewayClose(tag: number): void;
}

export interface AgentDatagramCounters {
  toGateway: number;
  toGatewayOverTls: number;
  toGatewayDropped: number;
  fromGateway: number;
  fromGatewayOverTls: number;
  keepalives: number;
  acks: number;
  rejected: Record<DatagramRejectReason, number>;
  /** Datagrams of exposed sessions the send budget dropped before sealing, by reason. */
  shed: Record<FairDropReason, number>;
}

/** Keepalive intervals without an ack before the agent falls back to the control channel. */
export const FALLBACK_AFTER_INTERVALS = 3;

/** Receives what arrives on the gateway socket from anyone but the gateway's tunnel (STUN answers, peers' ICE). */
export type ForeignDatagramHandler = (buf: Buffer, from: { address: string; port: number }) => boolean;

/**
 * The agent's datagram path to the gateway: one UDP socket (through the node's datapath, batched
 * where the native one runs), kept for the agent's whole life so its NAT mapping is one and
 * survives control-channel reconnects; replaced only if the gateway's address family changes.
 * The socket is not connected: ICE toward peer agents runs on it too (docs/connect.md), so the
 * server-reflexive address a peer gets is the very mapping the gateway sees. Tunnel datagrams
 * from the gateway's address go to the tunnel; everything else to `foreign`. It holds the sealer of the current keys, openers for the current and the previous
 * keys, keepalives and the UDP/TLS choice.
 *
 * Keepalives go over UDP every interval in both modes; an opened keepalive-ack means UDP works
 * (switch to, or stay on, UDP); FALLBACK_AFTER_INTERVALS intervals without one mean it does not
 * (switch to DATAGRAM frames on the control channel). Keys outlive the control connection: during
 * an outage the agent keeps sealing and opening with the old ones, which the gateway keeps for its
 * resume grace period, so working UDP flows continue.
 */
export class AgentDatagramPath {
  readonly counters: AgentDatagramCounters = {
    toGateway: 0, toGatewayOverTls: 0, toGatewayDropped: 0, fromGateway: 0, fromGatewayOverTls: 0, keepalives: 0, acks: 0,
    rejected: { malformed: 0, 'unknown-key': 0, 'too-old': 0, replayed: 0, 'auth-failed': 0, 'bad-plaintext': 0, 'key-exhausted': 0 },
    shed: { 'agent-budget': 0, 'session-share': 0, stale: 0 },
  };
  #mode: DatagramMode = 'tls';
  #sealer: SocketSealer | null = null;
  /** The gateway's key id of the current keys (HELLO.resumeKeyId next time). */
  gatewayKeyId = 0;
  readonly #openers = new Map<number, SocketOpener>();
  #currentKeyId = 0;
  #previousKeyId = 0;
  #channel: ControlChannel | null = null;
  #socket: UdpListener | null = null;
  #socketFamily = 0;
  #gateway: Endpoint | undefined;
  /** The local address toward the gateway (the control connection's), for the ICE host candidate. */
  #localAddress: string | undefined;
  /** Datagrams from elsewhere that nobody took. */
  foreignDropped = 0;
  #intervalMs = 0;
  #timer: Timer | undefined;
  #lastAck = -Infinity;
  #keepaliveCounter = 0;
  #closed = false;
  /** Sessions forwarded in the native batch: closed when the mode, the keys, the socket or the gateway change. */
  readonly #offloads = new OffloadGroup();

  constructor(
    private readonly datapath: UdpDatapath,
    private readonly clock: Clock,
    private readonly sink: DatagramSink,
    /** Datagrams not from the gateway (ICE toward peer agents); false when nobody took one. */
    private readonly foreign: ForeignDatagramHandler,
    private readonly onMode: (mode: DatagramMode) => void = () => {},
  ) {}

  get mode(): DatagramMode {
    return this.#mode;
  }

  /**
   * Registers the opener of a new connection's keys before HELLO. The openers of the current and
   * the previous session stay: failed attempts during an outage must not evict the keys the
   * working UDP flows still use.
   */
  prepare(ownKeyId: number, keys: DatagramKeys): void {
    this.#offloads.closeAll();
    for (const [id, o] of [...this.#openers]) {
      if (id === this.#currentKeyId || id === this.#previousKeyId) continue;
      this.#openers.delete(id);
      o.release();
    }
    this.#openers.get(ownKeyId)?.release();
    this.#openers.set(ownKeyId, tunnelOpener(this.datapath, { key: keys.receive, direction: keys.receiveDirection, keyId: ownKeyId }, {
      pinSource: true,
      onDropped: (reason, n) => void (this.counters.rejected[reason] += n),
    }));
  }

  /** After AUTH_OK: seal with the new keys, send over this channel, keep alive every `intervalMs`. */
  async attach(channel: ControlChannel, ownKeyId: number, keys: DatagramKeys, gatewayKeyId: number, gateway: Endpoint, intervalMs: number, localAddress?: string): Promise<void> {
    if (this.#currentKeyId !== ownKeyId) {
      this.#previousKeyId = this.#currentKeyId;
      this.#currentKeyId = ownKeyId;
    }
    this.#channel = channel;
    this.#offloads.closeAll();
    this.#sealer?.release();
    this.#sealer = tunnelSealer(this.datapath, { key: keys.send, direction: keys.sendDirection, peerKeyId: gatewayKeyId }, () => this.#socket);
    this.gatewayKeyId = gatewayKeyId;
    this.#gateway = gateway;
    if (localAddress) this.#localAddress = canonicalIp(localAddress)?.address ?? localAddress;
    if (this.#socketFamily !== gateway.family || this.#socket === null) {
      void this.#socket?.close();
      this.#socket = null;
      this.#socketFamily = gateway.family;
      try {
        this.#socket = await this.datapath.listen(gateway.family === 6 ? '::' : '0.0.0.0', 0, {
          onDatagram: (buf, address, port) => this.#onDatagram(buf, address, port),
          // ICMP errors (the gateway's UDP port unreachable) cost nothing here: the keepalives show whether UDP works.
          onSendError: () => {},
        });
        this.#socket.coalesce?.(); // the gateway sends its runs with UDP_SEGMENT
      } catch {
        this.#socketFamily = 0;
      }
      if (this.#closed) void this.#socket?.close();
    }
    if (intervalMs !== this.#intervalMs || !this.#timer) {
      this.#intervalMs = intervalMs;
      this.#timer?.cancel();
      this.#timer = this.clock.setInterval(() => this.#tick(), intervalMs);
    }
    this.#keepalive();
  }

  /** The gateway socket as ICE uses it; undefined until it is bound. */
  iceSocket(): IceSocket | undefined {
    const s = this.#socket;
    const local = this.#localAddress;
    const ip = local === undefined ? undefined : canonicalIp(local);
    if (!s || !ip) return undefined;
    return { local: { address: ip.address, port: s.local.port, family: ip.family }, send: (buf, port, address) => this.#sendTo(buf, port, address) };
  }

  /** The opener of a peer's direct-path key: its datagrams arrive on this socket (docs/datapath.md). */
  opener(opts: OpenerOptions): SocketOpener {
    return tunnelOpener(this.datapath, opts);
  }

  /** The sealer of a peer's direct-path key: sent from this socket, sealed in the batch where the datapath is native. */
  sealer(opts: SealerOptions): SocketSealer {
    return tunnelSealer(this.datapath, opts, () => this.#socket);
  }

  /** The gateway's STUN server: its UDP port (docs/expose.md). */
  gatewayStun(): { address: string; port: number } | undefined {
    return this.#gateway ? { address: this.#gateway.address, port: this.#gateway.port } : undefined;
  }

  /**
   * The tunnel side of connectee `tag` for the native batch (datapath/offload.ts): while datagrams
   * go over UDP with the current keys. Valid until the mode, the keys, the socket or the gateway
   * change (the session table checks on its sweep). `budget`: the session's send budget.
   */
  offloadEnd(tag: number, budget: SessionBudget): TunnelEnd | null {
    const sealer = this.#sealer;
    const opener = this.#openers.get(this.#currentKeyId);
    const socket = this.#socket;
    const gw = this.#gateway;
    if (this.#mode !== 'udp' || this.#closed || !sealer || !opener || !socket || !gw) return null;
    const counters = this.counters;
    return {
      kind: 'tunnel',
      sealer,
      opener,
      tag,
      peer: gw,
      pinPeer: true,
      ...budget,
      forwarded: (to, from) => {
        counters.toGateway += to;
        counters.fromGateway += from;
      },
      valid: () => this.#mode === 'udp' && !this.#closed && this.#sealer === sealer && this.#socket === socket && this.#gateway === gw && this.#openers.get(this.#currentKeyId) === opener,
      groups: [this.#offloads],
    };
  }

  /** As a DATAGRAM frame on the control channel whatever the mode: it stays behind earlier control messages. */
  sendOverChannel(tag: number, payload: Buffer): boolean {
    const ch = this.#channel;
    if (!ch || !ch.isOpen || ch.backlog >= CHANNEL_BACKLOG_BYTES || payload.length > MAX_DATAGRAM_PAYLOAD_BYTES) return false;
    ch.send({ type: 'datagram', tag, origin: undefined, payload });
    this.counters.toGatewayOverTls++;
    return true;
  }

  #sendTo(buf: Buffer, port: number, address: string): void {
    try {
      this.#socket?.send(buf, port, address);
    } catch {
      /* closing */
    }
  }

  #toGateway(buf: Buffer): void {
    const gw = this.#gateway;
    if (gw) this.#sendTo(buf, gw.port, gw.address);
  }

  #onDatagram(buf: Buffer, address: string, port: number): void {
    // An IPv4 socket reports canonical dotted quads; only the dual-stack one needs the parse (::ffff:a.b.c.d).
    const from = this.#socketFamily === 4 ? address : (canonicalIp(address)?.address ?? address);
    const gw = this.#gateway;
    if (gw && port === gw.port && from === gw.address && isTunnelDatagram(buf)) return this.#onUdp(buf);
    if (!this.foreign(buf, { address: from, port })) this.foreignDropped++;
  }

  /** The control connection is gone; UDP goes on with the current keys. */
  detach(channel: ControlChannel): void {
    if (this.#channel === channel) this.#channel = null;
  }

  /** Forget the keys: the gateway did not resume, so nothing sealed under them is of use. */
  forgetKeys(): void {
    this.#offloads.closeAll();
    this.#sealer?.release();
    this.#sealer = null;
    this.gatewayKeyId = 0;
  }

  send(tag: number, payload: Buffer): void {
    if (payload.length > MAX_DATAGRAM_PAYLOAD_BYTES) {
      this.counters.toGatewayDropped++;
      return;
    }
    const sealer = this.#sealer;
    const gw = this.#gateway;
    if (this.#mode === 'udp' && sealer && this.#socket && gw) {
      try {
        sealer.sendData(tag, payload, undefined, gw.port, gw.address);
      } catch (err) {
        if (isTunnelError(err, 'sequence-exhausted')) this.#channel?.close('internal', 'datagram sequence space used up');
        this.counters.toGatewayDropped++;
        return;
      }
      this.counters.toGateway++;
      return;
    }
    const ch = this.#channel;
    if (ch && ch.isOpen && ch.backlog < CHANNEL_BACKLOG_BYTES) {
      ch.send({ type: 'datagram', tag, origin: undefined, payload });
      this.counters.toGatewayOverTls++;
      return;
    }
    this.counters.toGatewayDropped++;
  }

  /** The agent dropped its session for `tag`. */
  sendClose(tag: number): void {
    const ch = this.#channel;
    if (ch && ch.isOpen) ch.send({ type: 'datagram-close', tag });
  }

  /** A DATAGRAM frame from the control channel. */
  onFrame(tag: number, origin: DatagramOrigin | undefined, payload: Buffer): void {
    this.counters.fromGatewayOverTls++;
    this.sink.onGatewayDatagram(tag, origin, payload);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#offloads.closeAll();
    this.#timer?.cancel();
    void this.#socket?.close();
    this.#sealer?.release();
    for (const o of this.#openers.values()) o.release();
    this.#openers.clear();
  }

  #tick(): void {
    if (this.#mode === 'udp' && this.clock.now() - this.#lastAck > FALLBACK_AFTER_INTERVALS * this.#intervalMs) this.#setMode('tls');
    this.#keepalive();
  }

  #keepalive(): void {
    const sealer = this.#sealer;
    const gw = this.#socket;
    if (!sealer || !gw || this.#closed) return;
    this.#keepaliveCounter = (this.#keepaliveCounter + 1) >>> 0;
    try {
      this.#toGateway(sealer.sealKeepalive(this.#keepaliveCounter));
      this.counters.keepalives++;
    } catch {
      /* sequence exhausted or socket closed: the next connection brings new keys */
    }
  }

  #setMode(mode: DatagramMode): void {
    if (this.#mode === mode) return;
    this.#mode = mode;
    this.#offloads.closeAll();
    this.onMode(mode);
  }

  #onUdp(buf: Buffer): void {
    const h = readUnverifiedHeader(buf);
    if (!h) {
      this.counters.rejected.malformed++;
      return;
    }
    const opener = this.#openers.get(h.keyId);
    if (!opener) {
      this.counters.rejected['unknown-key']++;
      return;
    }
    const r = opener.open(buf);
    if (!r.ok) {
      this.counters.rejected[r.reason]++;
      return;
    }
    const d = r.datagram;
    if (d.kind === 'keepalive-ack') {
      this.counters.acks++;
      this.#lastAck = this.clock.now();
      this.#setMode('udp');
      return;
    }
    if (d.kind === 'data') {
      this.counters.fromGateway++;
      this.sink.onGatewayDatagram(d.tag, d.origin, d.payload);
    }
  }
}

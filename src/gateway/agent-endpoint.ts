import { LRUCache } from 'lru-cache';
import type net from 'node:net';
import type tls from 'node:tls';
import { canonicalIp, type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { GatewayConfig } from '../config/expose-config.js';
import { PendingSlots } from '../admission/pending-slots.js';
import { RefusalHold } from '../admission/refusal-hold.js';
import { sourceKey } from '../admission/source-key.js';
import { DATA_HELLO_BYTES, DATA_HELLO_FIRST_BYTE, TUNNEL_ALPN, dataConnAlpn } from '../protocol/tunnel/index.js';
import type { StreamConn } from '../datapath/stream-datapath.js';
import { readConnPrefix, socketWithPrefix } from './conn-prefix.js';
import type { DataConnRefusal } from './data-conns.js';
import { ControlChannel } from '../upstream/agent/control-channel.js';
import { AuthBackoff } from './auth-backoff.js';
import type { GatewayCounters } from './counters.js';
import { runGatewayHandshake, type HandshakeOutcome } from './handshake.js';

export type AuthRefusal = Extract<HandshakeOutcome, { ok: false }>;
export type Authenticated = Extract<HandshakeOutcome, { ok: true }>;

/** What the agent endpoint needs from the gateway that owns it. */
export interface AgentEndpointDeps {
  readonly config: GatewayConfig;
  readonly clock: Clock;
  readonly counters: GatewayCounters;
  /** Why a source is banned, or undefined: its connections are refused before TLS. */
  readonly banned?: (client: Endpoint) => string | undefined;
  /** True once the gateway is closing: newcomers are refused, finished handshakes told so. */
  closing(): boolean;
  /** A tunnel handshake failed (already counted in `authRefused`). */
  refused(remote: Endpoint, outcome: AuthRefusal): void;
  /** An agent proved its token on `channel`; the gateway registers it. */
  authenticated(channel: ControlChannel, outcome: Authenticated, remote: Endpoint): void;
  /** A data connection's 48-byte hello (data-conns.ts): kept (undefined) or why not (the endpoint closes it). */
  dataConnection?(hello: Buffer, conn: StreamConn): DataConnRefusal | undefined;
}

/**
 * The agent endpoint before authentication (docs/security.md: slow handshakes): pre-auth slots,
 * total and per source key, where addresses agents authenticated from may evict strangers; banned
 * and capped connections held unread (RefusalHold) so they cannot reconnect in a loop; TLS, then
 * the tunnel handshake with its per-address backoff. A connection costs a slot, a timer and a
 * nonce here, never an agent entry.
 */
export class AgentEndpoint {
  /** Pre-auth connections. Stage 0: TLS under way; 1: TLS done. */
  readonly #pending: PendingSlots;
  /** Addresses an agent authenticated from: their newcomers may evict other pre-auth connections. */
  readonly #knownSources = new LRUCache<string, true>({ max: 10_000 });
  /** Refused connections, held unread until the handshake timeout so they cannot reconnect in a loop. */
  readonly #refused: RefusalHold;
  readonly #backoff: AuthBackoff;

  constructor(private readonly deps: AgentEndpointDeps) {
    const config = deps.config;
    this.#backoff = new AuthBackoff(config.authBackoff, deps.clock);
    this.#pending = new PendingSlots({ max: config.maxHandshakes, maxPerSource: config.maxHandshakesPerSource });
    this.#refused = new RefusalHold(
      { holdMs: config.handshakeTimeoutMs, max: Math.min(16 * config.maxHandshakes, 16_384), maxPerSource: config.maxHandshakesPerSource },
      deps.clock,
    );
  }

  /** The TLS server the admitted control connections go to; events wired once. */
  serve(server: tls.Server): void {
    this.#server = server;
    server.on('secureConnection', (s: tls.TLSSocket) => this.#onSecure(s));
    server.on('tlsClientError', (_err, socket: tls.TLSSocket) => {
      this.deps.counters.tlsErrors++;
      this.#releases.get(`${socket.remoteAddress}|${socket.remotePort}`)?.();
      socket.destroy();
    });
    server.on('error', () => {});
  }

  /** One connection of the bound TCP listener, unread (the listener's `onConnection`). */
  readonly accept = (conn: StreamConn): void => this.#onConnection(conn);

  #server: tls.Server | undefined;

  /** Refused pre-auth connections held open (unread) right now. */
  get held(): number {
    return this.#refused.size;
  }

  /** Pre-auth connections right now. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Ends every held, pre-auth and TLS connection (the listener is closed by its owner). */
  close(): void {
    this.#refused.close();
    for (const s of [...this.#sniffing, ...this.#sockets, ...this.#secure]) s.destroy();
  }

  /** Connections whose first bytes are being read (pre-auth, before TLS or the hello check). */
  readonly #sniffing = new Set<StreamConn>();

  /** Raw sockets before their handshake ended (Node emits no 'close' on them once TLS wraps them). */
  readonly #sockets = new Set<net.Socket>();
  /** TLS sockets, until they close. */
  readonly #secure = new Set<tls.TLSSocket>();
  /** Releases the pre-auth slot of a connection, by remote address|port. */
  readonly #releases = new Map<string, () => void>();
  /** Marks a pre-auth connection's TLS as done (it then outranks connections still in TLS). */
  readonly #advances = new Map<string, () => void>();

  #onConnection(conn: StreamConn): void {
    // Counted per source key (IPv6 per /64 by default, as every per-source limit); preferred by the
    // exact address an agent authenticated from.
    const ip = conn.remote;
    if (!ip || !this.#server) return conn.destroy();
    const source = sourceKey(ip, this.deps.config.services.sourcePrefix);
    if (this.deps.banned?.(ip) !== undefined) {
      // Held unread like a capped connection, so a banned agent cannot spin reconnecting.
      this.deps.counters.preAuthBanned++;
      this.#refused.refuse(conn.socket(), source);
      return;
    }
    let raw: net.Socket | undefined;
    let key = '';
    const admitted = this.deps.closing() ? undefined : this.#pending.admit(source, this.#knownSources.has(ip.address), () => {
      this.deps.counters.preAuthEvicted++;
      this.#releases.get(key)?.();
      release();
      (raw ?? conn).destroy();
    });
    if (!admitted?.ok) {
      this.deps.counters.preAuthCapped++;
      this.#refused.refuse(conn.socket(), source);
      return;
    }
    const slot = admitted.slot;
    let released = false;
    let expire!: () => void;
    const expired = new Promise<void>((resolve) => (expire = resolve));
    // Node hands the raw socket to a TLSSocket and emits no 'close' on it afterwards, so the slot
    // is also freed by this timer: nothing may stay pre-auth longer than the handshake timeout.
    const deadline = this.deps.clock.setTimeout(() => {
      expire();
      if (released) return;
      release();
      (raw ?? conn).destroy();
    }, this.deps.config.handshakeTimeoutMs + 100);
    const release = () => {
      if (released) return;
      released = true;
      deadline.cancel();
      if (raw) this.#sockets.delete(raw);
      this.#releases.delete(key);
      this.#advances.delete(key);
      slot.release();
    };
    // The first byte tells a data connection ("SLD1") from a control connection (a TLS record).
    this.#sniffing.add(conn);
    void readConnPrefix(conn, 1, expired).then((first) => {
      this.#sniffing.delete(conn);
      if (released) return;
      if (!first) {
        release();
        return conn.destroy();
      }
      if (first[0] === DATA_HELLO_FIRST_BYTE && this.deps.dataConnection) return this.#onDataConnection(conn, first, expired, release);
      raw = socketWithPrefix(conn, first);
      key = `${raw.remoteAddress}|${raw.remotePort}`;
      this.#sockets.add(raw);
      this.#releases.set(key, release);
      this.#advances.set(key, () => slot.advance(1));
      raw.once('close', release);
      raw.on('error', () => {});
      raw.setNoDelay(true); // stream frames are latency-bound; TLS records already batch
      this.#server!.emit('connection', raw);
    });
  }

  /** A data connection: its hello within the handshake deadline, then the gateway's check (data-conns.ts). */
  #onDataConnection(conn: StreamConn, first: Buffer, expired: Promise<void>, release: () => void): void {
    this.#sniffing.add(conn);
    void readConnPrefix(conn, DATA_HELLO_BYTES - 1, expired).then((rest) => {
      this.#sniffing.delete(conn);
      release();
      const refusal = rest ? this.deps.dataConnection!(Buffer.concat([first, rest]), conn) : 'timeout';
      if (refusal === undefined) return;
      this.deps.counters.dataConnRefused[refusal]++;
      conn.destroy();
    });
  }

  #onSecure(socket: tls.TLSSocket): void {
    socket.on('error', () => {});
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    const release = this.#releases.get(key) ?? (() => {});
    this.#advances.get(key)?.();
    socket.once('close', release);
    this.#secure.add(socket);
    socket.once('close', () => this.#secure.delete(socket));
    const ip = canonicalIp(socket.remoteAddress ?? '');
    const remote: Endpoint = { address: ip?.address ?? '0.0.0.0', port: socket.remotePort ?? 0, family: ip?.family ?? 4 };
    if (socket.alpnProtocol !== TUNNEL_ALPN && !dataConnAlpn(socket.alpnProtocol)) {
      this.deps.counters.tlsErrors++;
      socket.destroy();
      return;
    }
    const channel = new ControlChannel(socket, 'gateway', this.deps.clock);
    void runGatewayHandshake(channel, {
      clock: this.deps.clock,
      timeoutMs: this.deps.config.handshakeTimeoutMs,
      backoff: this.#backoff,
      credentials: (name) => this.deps.config.agents.get(name),
      source: remote.address,
    }).then((o) => {
      release();
      if (!o.ok) {
        this.deps.counters.authRefused[o.failure] = (this.deps.counters.authRefused[o.failure] ?? 0) + 1;
        this.deps.refused(remote, o);
        return;
      }
      if (this.deps.closing()) return channel.close('shutting-down', 'the gateway is shutting down');
      this.#knownSources.set(remote.address, true);
      this.deps.authenticated(channel, o, remote);
    });
  }
}

import { canonicalIp, type Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import type { RelayAllocation, RelayReceiver, RelayTransport } from '../ice/relay-transport.js';
import {
  StunTransactionTable, type DatagramSend, type StunPeer, type StunRetransmitTiming,
} from '../ice/stun-transaction.js';
import {
  ChannelNumber, Data, ErrorCode, Lifetime, RequestedTransport, StunMethod, XorMappedAddress, XorPeerAddress,
  XorRelayedAddress, attr, decodeStunDatagram, encodeStunMessage, getAttribute, randomTransactionId, stunMessage,
  type AttributeEntry, type DecodedStunMessage,
} from '../protocol/stun/index.js';
import { MIN_CHANNEL, MAX_CHANNEL, decodeChannelData, encodeChannelData } from './channel-data.js';
import { LongTermAuth } from './long-term-auth.js';
import { TurnError } from './turn-error.js';

/**
 * A TURN client (RFC 8656) over UDP, on a socket it does not own: requests leave through the
 * injected `send`, and the socket's owner hands every datagram from the server to
 * `handleDatagram` (which says whether it took it). So the allocation can share the socket whose
 * NAT mapping ICE uses, next to STUN and application traffic.
 *
 * Lifecycle: `allocate()` (401 → signed retry, 438 → retry with the new nonce), refreshes
 * before expiry, permissions and channels installed on demand by `send` and refreshed while the
 * allocation lives, `close()` deletes the allocation (Refresh with LIFETIME 0).
 */

export interface TurnServerConfig {
  readonly server: StunPeer;
  readonly username: string;
  readonly password: string;
  /** Requested allocation lifetime in s; the server may grant less. Default 600. */
  readonly lifetimeS?: number;
  /** Bind a channel for every peer data is sent to (smaller frames). Default true. */
  readonly channels?: boolean;
}

export interface TurnClientDeps {
  readonly clock: Clock;
  readonly send: DatagramSend;
  /** Aborting closes the client (without waiting for the server). */
  readonly signal?: AbortSignal;
  /** Retransmission of requests; RFC 8489 defaults. */
  readonly timing?: Partial<StunRetransmitTiming>;
}

export type TurnClientState = 'new' | 'allocating' | 'allocated' | 'closing' | 'closed' | 'failed';

export interface TurnCounters {
  channelDataSent: number;
  indicationsSent: number;
  received: number;
  /** Datagrams dropped: no permission could be installed, queue full, closed. */
  dropped: number;
}

/** A permission lasts 300 s (RFC 8656 §9); refreshed a minute early. */
const PERMISSION_REFRESH_MS = 240_000;
/** A channel binding lasts 600 s (RFC 8656 §12); refreshed a minute early. */
const CHANNEL_REFRESH_MS = 540_000;
/** Datagrams held per peer IP while its permission is being installed. */
const QUEUE_PER_PEER = 16;
/** Deleting the allocation on close should not hold shutdown for long. */
const CLOSE_TIMING: Partial<StunRetransmitTiming> = { rtoMs: 250, maxTransmissions: 3, lastWaitFactor: 4 };

interface Permission {
  state: 'pending' | 'active' | 'failed';
  queue: { buf: Buffer; peer: StunPeer }[];
  /** When it failed (clock ms); a send 30 s later tries again. */
  failedAt: number;
}

/** How long a refused permission is not asked for again. */
const PERMISSION_RETRY_MS = 30_000;

interface Channel {
  readonly number: number;
  readonly peer: Endpoint;
  state: 'pending' | 'active' | 'failed';
  timer: Timer | undefined;
}

export class TurnClient implements RelayTransport {
  readonly counters: TurnCounters = { channelDataSent: 0, indicationsSent: 0, received: 0, dropped: 0 };
  readonly #config: TurnServerConfig;
  readonly #deps: TurnClientDeps;
  readonly #server: Endpoint;
  readonly #auth: LongTermAuth;
  readonly #table: StunTransactionTable;
  readonly #life = new AbortController();
  readonly #permissions = new Map<string, Permission>();
  readonly #channelsByPeer = new Map<string, Channel>();
  readonly #channelsByNumber = new Map<number, Channel>();
  #state: TurnClientState = 'new';
  #allocation: Promise<RelayAllocation> | undefined;
  #refreshTimer: Timer | undefined;
  #permissionTimer: Timer | undefined;
  #nextChannel = MIN_CHANNEL;
  #receiver: RelayReceiver | undefined;
  #closing: Promise<void> | undefined;

  constructor(config: TurnServerConfig, deps: TurnClientDeps) {
    const ip = canonicalIp(config.server.address);
    if (!ip) throw new SluiceError('SLUICE_ERR_ADDRESS_INVALID', `TURN server "${config.server.address}" is not an IP address`);
    this.#config = config;
    this.#deps = deps;
    this.#server = { address: ip.address, port: config.server.port, family: ip.family };
    this.#auth = new LongTermAuth(config.username, config.password);
    this.#table = new StunTransactionTable({ clock: deps.clock, send: deps.send, signal: this.#life.signal }, deps.timing);
    deps.signal?.addEventListener('abort', () => this.#shutdown(new SluiceError('SLUICE_ERR_CLOSED', 'TURN client aborted')), { once: true });
  }

  get state(): TurnClientState {
    return this.#state;
  }

  get server(): Endpoint {
    return this.#server;
  }

  allocate(signal?: AbortSignal): Promise<RelayAllocation> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(new SluiceError('SLUICE_ERR_CLOSED', 'TURN client is closed'));
    this.#allocation ??= this.#allocate(signal);
    return this.#allocation;
  }

  setReceiver(receiver: RelayReceiver): void {
    this.#receiver = receiver;
  }

  send(buf: Buffer, peer: StunPeer): void {
    if (this.#state !== 'allocated') return void this.counters.dropped++;
    const ch = this.#channelsByPeer.get(key(peer));
    if (ch?.state === 'active') {
      this.counters.channelDataSent++;
      return this.#raw(encodeChannelData(ch.number, buf));
    }
    const ip = canonicalIp(peer.address)?.address;
    if (!ip) return void this.counters.dropped++;
    let perm = this.#permissions.get(ip);
    if (perm?.state === 'failed' && this.#deps.clock.now() - perm.failedAt >= PERMISSION_RETRY_MS) perm = undefined;
    if (!perm) {
      perm = { state: 'pending', queue: [], failedAt: 0 };
      this.#permissions.set(ip, perm);
      void this.#permit(ip, perm);
    }
    if (perm.state === 'pending') {
      if (perm.queue.length >= QUEUE_PER_PEER) return void this.counters.dropped++;
      perm.queue.push({ buf, peer });
      return;
    }
    if (perm.state === 'failed') return void this.counters.dropped++;
    this.#indicate(buf, peer);
    if (this.#config.channels !== false && !ch) void this.bindChannel(peer).catch(() => {});
  }

  /** Installs permissions for the IPs of `peers` (ports are ignored; RFC 8656 §9). */
  async createPermission(peers: readonly StunPeer[]): Promise<void> {
    await this.#request(StunMethod.CreatePermission, peers.map((p) => attr(XorPeerAddress, endpoint(p))));
  }

  /** Binds the next free channel to `peer` and resolves with its number; refreshed until close. */
  async bindChannel(peer: StunPeer): Promise<number> {
    const k = key(peer);
    const existing = this.#channelsByPeer.get(k);
    if (existing && existing.state !== 'failed') return existing.number;
    if (this.#nextChannel > MAX_CHANNEL) throw new TurnError(undefined, 'no channel numbers left');
    const ch: Channel = { number: this.#nextChannel++, peer: endpoint(peer), state: 'pending', timer: undefined };
    this.#channelsByPeer.set(k, ch);
    this.#channelsByNumber.set(ch.number, ch);
    try {
      await this.#bind(ch);
    } catch (err) {
      ch.state = 'failed';
      throw err;
    }
    return ch.number;
  }

  /**
   * Takes a datagram the shared socket received. Returns true when it was the server's and this
   * client used it; false for everything else, including STUN responses that belong to another
   * transaction table on the same socket (a Binding request to the same server, say).
   */
  handleDatagram(buf: Buffer, from: StunPeer): boolean {
    if (from.port !== this.#server.port || !sameIp(from.address, this.#server.address)) return false;
    const first = buf[0];
    if (first !== undefined && first >= 0x40 && first <= 0x4f) {
      const cd = decodeChannelData(buf);
      const ch = cd && this.#channelsByNumber.get(cd.channel);
      if (cd && ch && ch.state !== 'failed') this.#deliver(cd.data, ch.peer);
      return true;
    }
    let msg: DecodedStunMessage | undefined;
    try {
      msg = decodeStunDatagram(buf);
    } catch {
      return false;
    }
    if (!msg || msg.fingerprint === 'invalid') return false;
    if (msg.cls === 'success' || msg.cls === 'error') return this.#table.handleResponse(msg, from);
    if (msg.cls === 'indication' && msg.method === StunMethod.Data) {
      try {
        const peer = getAttribute(msg, XorPeerAddress);
        const data = getAttribute(msg, Data);
        if (peer && data) this.#deliver(data, peer);
      } catch {
        // a malformed Data indication is dropped (RFC 8656 §11.6)
      }
      return true;
    }
    return false;
  }

  /** Deletes the allocation (Refresh, LIFETIME 0) and stops every timer. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const wasAllocated = this.#state === 'allocated';
    if (this.#state === 'closed' || this.#state === 'failed') return;
    this.#state = 'closing';
    this.#cancelTimers();
    if (wasAllocated) await this.#request(StunMethod.Refresh, [attr(Lifetime, 0)], CLOSE_TIMING).catch(() => {});
    this.#shutdown(undefined);
  }

  async #allocate(signal: AbortSignal | undefined): Promise<RelayAllocation> {
    this.#state = 'allocating';
    try {
      const lifetime = this.#config.lifetimeS ?? 600;
      const res = await this.#request(StunMethod.Allocate, [attr(RequestedTransport, 17), attr(Lifetime, lifetime)], undefined, signal);
      const relayed = getAttribute(res, XorRelayedAddress);
      if (!relayed) throw new TurnError(undefined, 'Allocate success without XOR-RELAYED-ADDRESS');
      const mapped = getAttribute(res, XorMappedAddress);
      if (this.#state !== 'allocating') throw new SluiceError('SLUICE_ERR_CLOSED', 'TURN client closed during Allocate');
      this.#state = 'allocated';
      this.#scheduleRefresh(getAttribute(res, Lifetime) ?? lifetime);
      this.#permissionTimer = this.#deps.clock.setInterval(() => void this.#refreshPermissions(), PERMISSION_REFRESH_MS);
      return mapped ? { relayed, mapped } : { relayed };
    } catch (err) {
      if (this.#state === 'allocating') this.#shutdown(err as Error, 'failed');
      throw err;
    }
  }

  #scheduleRefresh(lifetimeS: number): void {
    // A minute early, or halfway for short lifetimes (RFC 8656 §8 leaves the margin to the client).
    const ms = lifetimeS > 120 ? (lifetimeS - 60) * 1000 : (lifetimeS * 1000) / 2;
    this.#refreshTimer?.cancel();
    this.#refreshTimer = this.#deps.clock.setTimeout(() => void this.#refresh(), ms);
  }

  async #refresh(): Promise<void> {
    try {
      const res = await this.#request(StunMethod.Refresh, [attr(Lifetime, this.#config.lifetimeS ?? 600)]);
      if (this.#state === 'allocated') this.#scheduleRefresh(getAttribute(res, Lifetime) ?? 600);
    } catch (err) {
      if (this.#state === 'allocated') this.#shutdown(new TurnError((err as TurnError).status, 'TURN allocation refresh failed', { cause: err }), 'failed');
    }
  }

  async #permit(ip: string, perm: Permission): Promise<void> {
    try {
      await this.createPermission([{ address: ip, port: 0 }]);
      perm.state = 'active';
    } catch {
      perm.state = 'failed';
    }
    const queued = perm.queue.splice(0);
    if (perm.state === 'failed') {
      perm.failedAt = this.#deps.clock.now();
      this.counters.dropped += queued.length;
      return;
    }
    for (const q of queued) this.send(q.buf, q.peer);
  }

  async #refreshPermissions(): Promise<void> {
    const ips = [...this.#permissions].filter(([, p]) => p.state === 'active').map(([ip]) => ({ address: ip, port: 0 }));
    if (ips.length > 0) await this.createPermission(ips).catch(() => {});
  }

  async #bind(ch: Channel): Promise<void> {
    await this.#request(StunMethod.ChannelBind, [attr(ChannelNumber, ch.number), attr(XorPeerAddress, ch.peer)]);
    if (this.#state !== 'allocated') return;
    ch.state = 'active';
    ch.timer?.cancel();
    ch.timer = this.#deps.clock.setTimeout(() => void this.#bind(ch).catch(() => (ch.state = 'failed')), CHANNEL_REFRESH_MS);
  }

  /** A signed request with the 401/438 dance; resolves with the success response, rejects with TurnError or the table's error. */
  async #request(
    method: number, attrs: readonly AttributeEntry[], timing?: Partial<StunRetransmitTiming>, signal?: AbortSignal,
  ): Promise<DecodedStunMessage> {
    for (let attempt = 0; ; attempt++) {
      const tid = randomTransactionId();
      const bytes = encodeStunMessage(stunMessage('request', method, tid, [...attrs, ...this.#auth.attributes()]), this.#auth.encodeOptions());
      const { response } = await this.#table.request(bytes, this.#server, { signal, timing, accept: (r) => this.#auth.accepts(r) });
      if (response.cls === 'success') return response;
      if (attempt < 3 && this.#auth.learn(response)) continue;
      const e = getAttribute(response, ErrorCode);
      throw new TurnError(e?.code, `TURN ${methodName(method)} refused: ${e ? `${e.code} ${e.reason}` : 'error without ERROR-CODE'}`);
    }
  }

  #indicate(buf: Buffer, peer: StunPeer): void {
    const msg = stunMessage('indication', StunMethod.Send, randomTransactionId(), [attr(XorPeerAddress, endpoint(peer)), attr(Data, buf)]);
    this.counters.indicationsSent++;
    this.#raw(encodeStunMessage(msg));
  }

  #raw(buf: Buffer): void {
    try {
      this.#deps.send(buf, this.#server.port, this.#server.address);
    } catch {
      this.counters.dropped++;
    }
  }

  #deliver(data: Buffer, from: Endpoint): void {
    if (this.#state !== 'allocated') return;
    this.counters.received++;
    this.#receiver?.onRelayDatagram(data, from);
  }

  #cancelTimers(): void {
    this.#refreshTimer?.cancel();
    this.#permissionTimer?.cancel();
    for (const ch of this.#channelsByNumber.values()) ch.timer?.cancel();
  }

  #shutdown(err: Error | undefined, state: 'closed' | 'failed' = 'closed'): void {
    if (this.#state === 'closed' || this.#state === 'failed') return;
    this.#state = state;
    this.#cancelTimers();
    this.#life.abort();
    for (const p of this.#permissions.values()) this.counters.dropped += p.queue.splice(0).length;
    this.#receiver?.onRelayClosed(err);
  }
}

function key(p: StunPeer): string {
  return `${canonicalIp(p.address)?.address ?? p.address}|${p.port}`;
}

function endpoint(p: StunPeer): Endpoint {
  const ip = canonicalIp(p.address);
  if (!ip) throw new SluiceError('SLUICE_ERR_ADDRESS_INVALID', `"${p.address}" is not an IP address`);
  return { address: ip.address, port: p.port, family: ip.family };
}

function sameIp(reported: string, canonical: string): boolean {
  return reported === canonical || canonicalIp(reported)?.address === canonical;
}

function methodName(method: number): string {
  const names: Record<number, string> = {
    [StunMethod.Allocate]: 'Allocate', [StunMethod.Refresh]: 'Refresh',
    [StunMethod.CreatePermission]: 'CreatePermission', [StunMethod.ChannelBind]: 'ChannelBind',
  };
  return names[method] ?? `method 0x${method.toString(16)}`;
}

import { canonicalIp, type Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import type { RelayAllocation, RelayReceiver, RelayTransport } from './relay-transport.js';
import {
  StunTransactionTable, type DatagramSend, type StunPeer, type StunRetransmitTiming,
} from './stun-transaction.js';
import {
  Data, ErrorCode, Lifetime, RequestedTransport, StunMethod, XorMappedAddress, XorPeerAddress, XorRelayedAddress, attr,
  decodeStunDatagram, encodeStunMessage, getAttribute, randomTransactionId, stunMessage,
  type AttributeEntry, type DecodedStunMessage,
} from '../protocol/stun/index.js';
import { decodeChannelData } from './channel-data.js';
import { LongTermAuth } from './long-term-auth.js';
import { PERMISSION_REFRESH_MS, PeerPaths, type TurnCounters } from './peer-paths.js';
import { TurnError } from './turn-error.js';

export type { TurnCounters } from './peer-paths.js';

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

/** Deleting the allocation on close should not hold shutdown for long (sends at 0, 0.25, 0.75 s; gives up at 1.75 s). */
const CLOSE_TIMING: Partial<StunRetransmitTiming> = { rtoMs: 250, maxTransmissions: 3, lastWaitFactor: 4 };

export class TurnClient implements RelayTransport {
  readonly counters: TurnCounters = { channelDataSent: 0, indicationsSent: 0, received: 0, dropped: 0 };
  readonly #config: TurnServerConfig;
  readonly #deps: TurnClientDeps;
  readonly #server: Endpoint;
  readonly #auth: LongTermAuth;
  readonly #table: StunTransactionTable;
  readonly #life = new AbortController();
  readonly #paths: PeerPaths;
  #state: TurnClientState = 'new';
  #allocation: Promise<RelayAllocation> | undefined;
  #refreshTimer: Timer | undefined;
  #permissionTimer: Timer | undefined;
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
    this.#paths = new PeerPaths({
      clock: deps.clock, channels: config.channels !== false, counters: this.counters,
      request: (method, attrs) => this.#request(method, attrs),
      sendRaw: (buf) => this.#raw(buf),
    });
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
    this.#paths.send(buf, peer);
  }

  /** Installs permissions for the IPs of `peers` (ports are ignored; RFC 8656 §9). */
  createPermission(peers: readonly StunPeer[]): Promise<void> {
    return this.#paths.createPermission(peers);
  }

  /** Binds the next free channel to `peer` (one per peer) and resolves with its number; re-bound until close. */
  bindChannel(peer: StunPeer): Promise<number> {
    return this.#paths.bindChannel(peer);
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
      const peer = cd && this.#paths.channelPeer(cd.channel);
      if (cd && peer) this.#deliver(cd.data, peer);
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
      this.#permissionTimer = this.#deps.clock.setInterval(() => void this.#paths.refreshPermissions(), PERMISSION_REFRESH_MS);
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
    this.#paths.stop();
  }

  #shutdown(err: Error | undefined, state: 'closed' | 'failed' = 'closed'): void {
    if (this.#state === 'closed' || this.#state === 'failed') return;
    this.#state = state;
    this.#cancelTimers();
    this.#life.abort();
    this.#receiver?.onRelayClosed(err);
  }
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

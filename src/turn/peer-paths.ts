import { canonicalIp, type Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import type { StunPeer } from './stun-transaction.js';
import {
  ChannelNumber, Data, StunMethod, XorPeerAddress, attr, encodeStunMessage, randomTransactionId, stunMessage,
  type AttributeEntry, type DecodedStunMessage,
} from '../protocol/stun/index.js';
import { MAX_CHANNEL, MIN_CHANNEL, encodeChannelData } from './channel-data.js';
import { TurnError } from './turn-error.js';

/**
 * How datagrams reach peers through one allocation (RFC 8656 §9, §11, §12): permissions per peer
 * IP, channel bindings per peer address, and the choice between ChannelData and Send
 * indications. Permissions are installed on demand (datagrams wait in a short queue meanwhile)
 * and refreshed every 240 s; channels are bound on first use and re-bound every 540 s.
 */

export interface TurnCounters {
  channelDataSent: number;
  indicationsSent: number;
  received: number;
  /** Datagrams dropped: no permission could be installed, queue full, closed. */
  dropped: number;
}

export interface PeerPathsDeps {
  readonly clock: Clock;
  /** A signed request to the server; resolves with the success response, rejects otherwise. */
  request(method: number, attrs: readonly AttributeEntry[]): Promise<DecodedStunMessage>;
  /** Sends bytes to the server. Never throws. */
  sendRaw(buf: Buffer): void;
  /** Bind channels automatically for peers data goes to. */
  readonly channels: boolean;
  readonly counters: TurnCounters;
}

/** A permission lasts 300 s (RFC 8656 §9); refreshed a minute early. */
export const PERMISSION_REFRESH_MS = 240_000;
/** A channel binding lasts 600 s (RFC 8656 §12); refreshed a minute early. */
const CHANNEL_REFRESH_MS = 540_000;
/** Datagrams held per peer IP while its permission is being installed. */
const QUEUE_PER_PEER = 16;
/** How long a refused permission is not asked for again. */
const PERMISSION_RETRY_MS = 30_000;

interface Permission {
  state: 'pending' | 'active' | 'failed';
  queue: { buf: Buffer; peer: StunPeer }[];
  /** When it failed (clock ms). */
  failedAt: number;
}

interface Channel {
  readonly number: number;
  readonly peer: Endpoint;
  state: 'pending' | 'active' | 'failed';
  timer: Timer | undefined;
}

export class PeerPaths {
  readonly #deps: PeerPathsDeps;
  readonly #permissions = new Map<string, Permission>();
  readonly #byPeer = new Map<string, Channel>();
  readonly #byNumber = new Map<number, Channel>();
  #next = MIN_CHANNEL;
  #stopped = false;

  constructor(deps: PeerPathsDeps) {
    this.#deps = deps;
  }

  send(buf: Buffer, peer: StunPeer): void {
    const { counters } = this.#deps;
    if (this.#stopped) return void counters.dropped++;
    const ch = this.#byPeer.get(peerKey(peer));
    if (ch?.state === 'active') {
      counters.channelDataSent++;
      return this.#deps.sendRaw(encodeChannelData(ch.number, buf));
    }
    const ip = canonicalIp(peer.address)?.address;
    if (!ip) return void counters.dropped++;
    let perm = this.#permissions.get(ip);
    if (perm?.state === 'failed' && this.#deps.clock.now() - perm.failedAt >= PERMISSION_RETRY_MS) perm = undefined;
    if (!perm) {
      perm = { state: 'pending', queue: [], failedAt: 0 };
      this.#permissions.set(ip, perm);
      void this.#permit(ip, perm);
    }
    if (perm.state === 'pending') {
      if (perm.queue.length >= QUEUE_PER_PEER) return void counters.dropped++;
      return void perm.queue.push({ buf, peer });
    }
    if (perm.state === 'failed') return void counters.dropped++;
    this.#indicate(buf, peer);
    if (this.#deps.channels && !ch) void this.bindChannel(peer).catch(() => {});
  }

  async createPermission(peers: readonly StunPeer[]): Promise<void> {
    await this.#deps.request(StunMethod.CreatePermission, peers.map((p) => attr(XorPeerAddress, endpoint(p))));
  }

  async bindChannel(peer: StunPeer): Promise<number> {
    const k = peerKey(peer);
    const existing = this.#byPeer.get(k);
    if (existing && existing.state !== 'failed') return existing.number;
    if (this.#next > MAX_CHANNEL) throw new TurnError(undefined, 'no channel numbers left');
    const ch: Channel = { number: this.#next++, peer: endpoint(peer), state: 'pending', timer: undefined };
    this.#byPeer.set(k, ch);
    this.#byNumber.set(ch.number, ch);
    try {
      await this.#bind(ch);
    } catch (err) {
      ch.state = 'failed';
      throw err;
    }
    return ch.number;
  }

  /** The peer bound to a channel number, for received ChannelData. */
  channelPeer(number: number): Endpoint | undefined {
    const ch = this.#byNumber.get(number);
    return ch && ch.state !== 'failed' ? ch.peer : undefined;
  }

  /** Re-sends CreatePermission for every installed permission (call every PERMISSION_REFRESH_MS). */
  async refreshPermissions(): Promise<void> {
    const ips = [...this.#permissions].filter(([, p]) => p.state === 'active').map(([ip]) => ({ address: ip, port: 0 }));
    if (ips.length > 0) await this.createPermission(ips).catch(() => {});
  }

  /** Stops the channel timers and drops what waits for a permission. Idempotent. */
  stop(): void {
    this.#stopped = true;
    for (const ch of this.#byNumber.values()) ch.timer?.cancel();
    for (const p of this.#permissions.values()) this.#deps.counters.dropped += p.queue.splice(0).length;
  }

  async #permit(ip: string, perm: Permission): Promise<void> {
    try {
      await this.createPermission([{ address: ip, port: 0 }]);
      perm.state = 'active';
    } catch {
      perm.state = 'failed';
      perm.failedAt = this.#deps.clock.now();
    }
    const queued = perm.queue.splice(0);
    if (perm.state === 'failed') return void (this.#deps.counters.dropped += queued.length);
    for (const q of queued) this.send(q.buf, q.peer);
  }

  async #bind(ch: Channel): Promise<void> {
    await this.#deps.request(StunMethod.ChannelBind, [attr(ChannelNumber, ch.number), attr(XorPeerAddress, ch.peer)]);
    if (this.#stopped) return;
    ch.state = 'active';
    ch.timer?.cancel();
    ch.timer = this.#deps.clock.setTimeout(() => void this.#bind(ch).catch(() => (ch.state = 'failed')), CHANNEL_REFRESH_MS);
  }

  #indicate(buf: Buffer, peer: StunPeer): void {
    const msg = stunMessage('indication', StunMethod.Send, randomTransactionId(), [attr(XorPeerAddress, endpoint(peer)), attr(Data, buf)]);
    this.#deps.counters.indicationsSent++;
    this.#deps.sendRaw(encodeStunMessage(msg));
  }
}

function peerKey(p: StunPeer): string {
  return `${canonicalIp(p.address)?.address ?? p.address}|${p.port}`;
}

function endpoint(p: StunPeer): Endpoint {
  const ip = canonicalIp(p.address);
  if (!ip) throw new SluiceError('SLUICE_ERR_ADDRESS_INVALID', `"${p.address}" is not an IP address`);
  return { address: ip.address, port: p.port, family: ip.family };
}

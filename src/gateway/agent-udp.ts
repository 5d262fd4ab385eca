import type { Clock } from '../core/clock.js';
import type { UnverifiedReplyGuard } from '../core/unverified-reply-guard.js';
import { isTunnelError, type OpenedDatagram } from '../protocol/tunnel/index.js';
import type { SocketOpener, SocketSealer } from '../datapath/tunnel-keys.js';
import type { GatewayCounters } from './counters.js';

/** The datagram keys of one control connection (docs/tunnel-protocol.md §6). */
export interface KeySet {
  /** The gateway's own key id (AUTH_OK): agent-to-gateway datagrams carry it. */
  readonly keyId: number;
  readonly opener: SocketOpener;
  /** Seals gateway-to-agent datagrams under the agent's key id (HELLO) and sends them on the gateway's UDP socket. */
  readonly sealer: SocketSealer;
}

export interface AgentUdpDeps {
  readonly clock: Clock;
  readonly counters: GatewayCounters;
  readonly keepaliveIntervalMs: number;
  /** The UDP socket's bound on what it answers to a source by itself (keepalive acks here). */
  readonly replies: UnverifiedReplyGuard;
  sendUdp(buf: Buffer, port: number, address: string): void;
  /** A key or its sequence space is used up: the link must close so the agent reconnects with new keys. */
  exhausted(message: string): void;
  /** The sealing keys or the agent's address changed (what the native batch forwards with is stale). */
  changed?(): void;
}

/** Freshness of the agent's UDP address, in keepalive intervals (docs/tunnel-protocol.md §7). */
const FRESH_INTERVALS = 3;

/**
 * One agent's UDP side on the gateway: its datagram keys (the newest seals; older ones still
 * open until forgotten), the address its datagrams come from, and keepalive acks.
 *
 * Address rule (SPF-2): the address moves only on a datagram that opened under the newest keys and
 * raised the highest sequence (`newest`); nothing unauthenticated ever moves it.
 */
export class AgentUdp {
  #keys: KeySet[] = [];
  #address: { address: string; port: number } | undefined;
  #lastFresh = -Infinity;

  constructor(private readonly deps: AgentUdpDeps) {}

  get currentKeyId(): number {
    return this.#keys.at(-1)?.keyId ?? 0;
  }

  get address(): { address: string; port: number } | undefined {
    return this.#address;
  }

  /** True while the agent's UDP address has delivered an authenticated datagram recently. */
  get fresh(): boolean {
    return this.#address !== undefined && this.deps.clock.now() - this.#lastFresh < FRESH_INTERVALS * this.deps.keepaliveIntervalMs;
  }

  /** A new connection's keys; they seal from now on. */
  add(keys: KeySet): void {
    this.#keys.push(keys);
    this.deps.changed?.();
  }

  /** After a resume: only the newest keys stay; returns the older ones (still registered until forgotten). */
  keepNewest(): KeySet[] {
    const previous = this.#keys.slice(0, -1);
    this.#keys = this.#keys.slice(-1);
    this.deps.changed?.();
    return previous;
  }

  /** The link closed: returns every key, none stays. */
  takeAll(): KeySet[] {
    const all = this.#keys;
    this.#keys = [];
    this.deps.changed?.();
    return all;
  }

  /**
   * Opens a datagram whose header named `keys`, from `address:port`: counts rejections, moves the
   * address by the rule above, answers keepalives. Returns a data datagram for delivery, else
   * undefined.
   */
  open(keys: KeySet, buf: Buffer, address: string, port: number): Extract<OpenedDatagram, { kind: 'data' }> | undefined {
    const r = keys.opener.open(buf);
    const counters = this.deps.counters;
    if (!r.ok) {
      counters.datagramRejected[r.reason]++;
      if (r.reason === 'key-exhausted') this.deps.exhausted('datagram key exhausted; reconnect');
      return undefined;
    }
    const d = r.datagram;
    this.#lastFresh = this.deps.clock.now();
    const current = this.#address;
    if (d.newest && keys === this.#keys.at(-1) && (current === undefined || current.address !== address || current.port !== port)) {
      if (current !== undefined) counters.agentAddressMoves++;
      this.#address = { address, port };
      this.deps.changed?.();
    }
    if (d.kind === 'keepalive') {
      counters.keepalives++;
      const sealer = this.#keys.at(-1)?.sealer;
      // Authenticated and replay-checked, but the source address is whatever the datagram said.
      if (sealer) this.#sealAndSend(() => sealer.sealKeepaliveAck(d.counter), port, address, buf.length);
      return undefined;
    }
    if (d.kind !== 'data') return undefined;
    counters.datagramsFromAgent++;
    return d;
  }

  /** The keys that seal now and the agent's address, while that address is fresh; else undefined. */
  current(): { readonly keys: KeySet; readonly address: { address: string; port: number } } | undefined {
    const keys = this.#keys.at(-1);
    const address = this.#address;
    return keys && address && this.fresh ? { keys, address } : undefined;
  }

  /** True while `keys` seal and `address` (the same object `current` gave) is the agent's fresh address. */
  isCurrent(keys: KeySet, address: { address: string; port: number }): boolean {
    return this.#keys.at(-1) === keys && this.#address === address && this.fresh;
  }

  /** Seals one datagram toward the agent's fresh address; false (nothing sent) when there is none. */
  send(tag: number, payload: Buffer, originBlock: Buffer | undefined): boolean {
    const keys = this.#keys.at(-1);
    const to = this.#address;
    if (!keys || !to || !this.fresh) return false;
    try {
      keys.sealer.sendData(tag, payload, originBlock, to.port, to.address);
    } catch (err) {
      if (isTunnelError(err, 'sequence-exhausted')) this.deps.exhausted('datagram sequence space used up; reconnect');
      return false;
    }
    return true;
  }

  /** `inReplyTo`: the size of the datagram this answers, when the destination is only its source address. */
  #sealAndSend(seal: () => Buffer, port: number, address: string, inReplyTo?: number): void {
    let out: Buffer;
    try {
      out = seal();
    } catch (err) {
      if (isTunnelError(err, 'sequence-exhausted')) this.deps.exhausted('datagram sequence space used up; reconnect');
      return;
    }
    if (inReplyTo !== undefined && !this.deps.replies.allows(out.length, inReplyTo)) return;
    this.deps.sendUdp(out, port, address);
  }
}

import type { Clock, Timer } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import { decodeStunHeader } from '../protocol/stun/header.js';
import type { DecodedStunMessage } from '../protocol/stun/message.js';

/**
 * STUN client transactions (RFC 8489 §6.2): send a request, retransmit it on the RFC schedule,
 * and hand back the response whose transaction id matches. No sockets: requests leave through an
 * injected `send`, and the socket's owner feeds responses in through `handleResponse`, so ICE
 * and TURN can run transactions over whatever socket (and NAT mapping) they need.
 */

/** Sends one datagram. Fire and forget; it may throw synchronously (socket closed). */
export type DatagramSend = (buf: Buffer, port: number, address: string) => void;

export interface StunPeer {
  readonly address: string;
  readonly port: number;
}

/** Retransmission parameters over UDP (RFC 8489 §6.2.1). */
export interface StunRetransmitTiming {
  /** Initial RTO in ms, doubled after each retransmission. RFC default 500; ICE checks may use less. */
  readonly rtoMs: number;
  /** Rc: how many times the request is sent in all. RFC default 7. */
  readonly maxTransmissions: number;
  /** Rm: after the last transmission, wait Rm × initial RTO for an answer. RFC default 16. */
  readonly lastWaitFactor: number;
}

/** 0, 500, 1500, 3500, 7500, 15500, 31500 ms, then a timeout at 39500 ms. */
export const RFC8489_UDP_TIMING: StunRetransmitTiming = Object.freeze({ rtoMs: 500, maxTransmissions: 7, lastWaitFactor: 16 });

/** Ti: the whole-transaction timeout on a reliable transport, where nothing is retransmitted. */
export const RFC8489_RELIABLE_TIMEOUT_MS = 39_500;

export interface StunRequestOptions {
  /** Aborting rejects the request with `signal.reason` and stops its retransmissions. */
  readonly signal?: AbortSignal;
  readonly timing?: Partial<StunRetransmitTiming>;
  /** TCP or TLS: send once and wait `RFC8489_RELIABLE_TIMEOUT_MS` (RFC 8489 §6.2.2). */
  readonly reliable?: boolean;
  /**
   * Vets a response with the right transaction id; returning false drops it and the transaction
   * keeps waiting (RFC 8489 §6.3.3: a response failing integrity is discarded as if never seen).
   * ICE checks the source address here too. Must not throw.
   */
  readonly accept?: (response: DecodedStunMessage, from: StunPeer) => boolean;
}

export interface StunTransactionResult {
  /** A success or error response; an error response is a result, not a rejection (TURN needs 401/438). */
  readonly response: DecodedStunMessage;
  readonly from: StunPeer;
  readonly transmissions: number;
  /** From the first transmission to the response, in ms. */
  readonly elapsedMs: number;
  /** Round-trip time in ms, only when the request was sent once (Karn: later samples are ambiguous). */
  readonly rttMs: number | undefined;
}

/** No response arrived in time. Code SLUICE_ERR_STUN_TIMEOUT; the fields say how hard we tried. */
export class StunTimeoutError extends SluiceError {
  override name = 'StunTimeoutError';
  constructor(
    readonly transactionId: string,
    readonly transmissions: number,
    readonly elapsedMs: number,
    readonly to: StunPeer,
  ) {
    super('SLUICE_ERR_STUN_TIMEOUT', `STUN transaction ${transactionId} to ${to.address}:${to.port} timed out after ${transmissions} transmissions (${elapsedMs} ms)`);
  }
}

export interface StunTransactionDeps {
  readonly clock: Clock;
  readonly send: DatagramSend;
  /** Aborting closes the table. */
  readonly signal?: AbortSignal;
}

interface Pending {
  readonly id: string;
  readonly bytes: Buffer;
  readonly to: StunPeer;
  readonly opts: StunRequestOptions;
  readonly timing: StunRetransmitTiming;
  readonly startedAt: number;
  readonly resolve: (r: StunTransactionResult) => void;
  readonly reject: (e: unknown) => void;
  readonly onAbort: () => void;
  transmissions: number;
  lastSentAt: number;
  nextIntervalMs: number;
  timer: Timer | undefined;
}

/**
 * The outstanding requests of one socket, keyed by transaction id. One table per socket: the
 * socket's receive path calls `handleResponse` for every STUN success or error response.
 * `accept` runs synchronously inside `handleResponse` and must not call back into the table.
 */
export class StunTransactionTable {
  readonly #pending = new Map<string, Pending>();
  readonly #deps: StunTransactionDeps;
  readonly #defaults: StunRetransmitTiming;
  #closed = false;

  constructor(deps: StunTransactionDeps, defaults: Partial<StunRetransmitTiming> = {}) {
    this.#deps = deps;
    this.#defaults = { ...RFC8489_UDP_TIMING, ...defaults };
    deps.signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  /** Requests in flight. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Sends an encoded STUN request to `to` and resolves with the first accepted response.
   * Rejects with StunTimeoutError, with `signal.reason` on abort, with SLUICE_ERR_CLOSED when the
   * table closes, with SLUICE_ERR_DIAL_FAILED when `send` throws, and with
   * SLUICE_ERR_STUN_INVALID when `bytes` is not a request or its transaction id is in use.
   */
  request(bytes: Buffer, to: StunPeer, opts: StunRequestOptions = {}): Promise<StunTransactionResult> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new SluiceError('SLUICE_ERR_CLOSED', 'STUN transaction table is closed'));
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      const h = decodeStunHeader(bytes);
      if (h.kind !== 'ok' || h.value.cls !== 'request' || bytes.length !== 20 + h.value.length) {
        return reject(new SluiceError('SLUICE_ERR_STUN_INVALID', 'a STUN transaction needs one encoded request'));
      }
      const id = h.value.transactionId.toString('hex');
      if (this.#pending.has(id)) return reject(new SluiceError('SLUICE_ERR_STUN_INVALID', `transaction id ${id} is already in flight`));
      const timing = { ...this.#defaults, ...opts.timing };
      const p: Pending = {
        id, bytes, to, opts, timing, resolve, reject,
        startedAt: this.#deps.clock.now(),
        onAbort: () => this.#finish(p, () => reject(opts.signal!.reason)),
        transmissions: 0,
        lastSentAt: 0,
        nextIntervalMs: timing.rtoMs,
        timer: undefined,
      };
      this.#pending.set(id, p);
      opts.signal?.addEventListener('abort', p.onAbort, { once: true });
      this.#transmit(p);
    });
  }

  /**
   * Offers a decoded success or error response. Returns true when it completed a transaction;
   * false when no transaction wants it (unknown id, already answered, not a response, or
   * `accept` refused it), so the caller may pass it on or drop it.
   */
  handleResponse(msg: DecodedStunMessage, from: StunPeer): boolean {
    if (msg.cls !== 'success' && msg.cls !== 'error') return false;
    const p = this.#pending.get(msg.transactionId.toString('hex'));
    if (!p || (p.opts.accept && !p.opts.accept(msg, from))) return false;
    const now = this.#deps.clock.now();
    const result: StunTransactionResult = {
      response: msg,
      from,
      transmissions: p.transmissions,
      elapsedMs: now - p.startedAt,
      rttMs: p.transmissions === 1 ? now - p.lastSentAt : undefined,
    };
    this.#finish(p, () => p.resolve(result));
    return true;
  }

  /** Rejects every request in flight with SLUICE_ERR_CLOSED. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of [...this.#pending.values()]) {
      this.#finish(p, () => p.reject(new SluiceError('SLUICE_ERR_CLOSED', 'STUN transaction table closed')));
    }
  }

  #transmit(p: Pending): void {
    try {
      this.#deps.send(p.bytes, p.to.port, p.to.address);
    } catch (err) {
      this.#finish(p, () => p.reject(new SluiceError('SLUICE_ERR_DIAL_FAILED', `STUN send to ${p.to.address}:${p.to.port} failed`, { cause: err })));
      return;
    }
    p.transmissions++;
    p.lastSentAt = this.#deps.clock.now();
    const { timing } = p;
    if (p.opts.reliable) {
      p.timer = this.#deps.clock.setTimeout(() => this.#timeout(p), RFC8489_RELIABLE_TIMEOUT_MS);
    } else if (p.transmissions < timing.maxTransmissions) {
      const wait = p.nextIntervalMs;
      p.nextIntervalMs *= 2;
      p.timer = this.#deps.clock.setTimeout(() => this.#transmit(p), wait);
    } else {
      p.timer = this.#deps.clock.setTimeout(() => this.#timeout(p), timing.lastWaitFactor * timing.rtoMs);
    }
  }

  #timeout(p: Pending): void {
    const err = new StunTimeoutError(p.id, p.transmissions, this.#deps.clock.now() - p.startedAt, p.to);
    this.#finish(p, () => p.reject(err));
  }

  /** Removes the transaction exactly once, then settles it. */
  #finish(p: Pending, settle: () => void): void {
    if (this.#pending.get(p.id) !== p) return;
    this.#pending.delete(p.id);
    p.timer?.cancel();
    p.opts.signal?.removeEventListener('abort', p.onAbort);
    settle();
  }
}

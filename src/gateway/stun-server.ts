import { canonicalIp } from '../core/address.js';
import { UnverifiedReplyGuard } from '../core/unverified-reply-guard.js';
import type { DatagramSend, StunPeer } from '../turn/stun-transaction.js';
import { ErrorCode, Software, UnknownAttributes, XorMappedAddress, xorAddressAttributeBytes } from '../protocol/stun/attributes.js';
import { HEADER_BYTES, StunErrorCode, StunMethod } from '../protocol/stun/constants.js';
import { decodeStunHeader } from '../protocol/stun/header.js';
import {
  attr, decodeStunDatagram, encodeStunMessage, stunMessage, type AttributeEntry, type DecodedStunMessage,
} from '../protocol/stun/message.js';

/**
 * A STUN server for Binding requests (RFC 8489 §6.3) that lives on a socket shared with other
 * traffic: the socket's owner feeds it the datagrams the demultiplexer classed as STUN, and it
 * answers through an injected `send`. It keeps no per-client state.
 *
 * Requests are not authenticated: any source gets its reflexive address. MESSAGE-INTEGRITY in a
 * request is ignored (there is no key; ICE checks are answered by the ICE agent, not here).
 * Because the source may be spoofed, every response is bounded (threats-and-tests AMP-3):
 * at most the request's size plus the XOR-MAPPED-ADDRESS attribute a response must carry,
 * i.e. request + 12 bytes for IPv4 clients and + 24 for IPv6. Optional parts (SOFTWARE, reason
 * phrases) are left out first; a response that still does not fit is not sent. Every response
 * then passes the socket's UnverifiedReplyGuard (at most 3x the request), the check every
 * responder to unverified sources shares.
 */

export interface StunServerOptions {
  /**
   * SOFTWARE for responses. Off by default: it costs bytes, and naming the version helps
   * attackers. Sent only when it fits the amplification bound.
   */
  readonly software?: string;
  /** The guard of the socket this server answers on (shared with its other responders); a new one by default. */
  readonly replies?: UnverifiedReplyGuard;
}

export type StunDropReason = 'not-stun' | 'malformed' | 'bad-fingerprint' | 'amplification' | 'send-error';

/**
 * What happened to a datagram. `pass` hands back a well-formed STUN message that is not a
 * request (a response for a client transaction on the same socket, or an indication).
 */
export type StunServerOutcome =
  | { readonly kind: 'answered' }
  | { readonly kind: 'error-response'; readonly code: number }
  | { readonly kind: 'dropped'; readonly reason: StunDropReason }
  | { readonly kind: 'pass'; readonly message: DecodedStunMessage };

/** Cumulative counters; the owner publishes them in batches (never one event per datagram). */
export interface StunServerCounters {
  answered: number;
  errorResponses: number;
  dropped: Record<StunDropReason, number>;
}

export class StunBindingServer {
  readonly counters: StunServerCounters = {
    answered: 0,
    errorResponses: 0,
    dropped: { 'not-stun': 0, malformed: 0, 'bad-fingerprint': 0, amplification: 0, 'send-error': 0 },
  };
  readonly replies: UnverifiedReplyGuard;
  readonly #send: DatagramSend;
  readonly #software: string | undefined;

  constructor(send: DatagramSend, opts: StunServerOptions = {}) {
    this.#send = send;
    this.replies = opts.replies ?? new UnverifiedReplyGuard();
    if (opts.software !== undefined) Software.encode(opts.software, Buffer.alloc(12)); // throws now, not per request
    this.#software = opts.software;
  }

  /** Handles one datagram from `from` (as the socket reported it). Never throws. */
  handleDatagram(buf: Buffer, from: StunPeer): StunServerOutcome {
    const client = canonicalIp(from.address);
    if (!client) return this.#drop('malformed');
    const limit = Math.min(buf.length + xorAddressAttributeBytes(client.family), UnverifiedReplyGuard.limit(buf.length));
    let msg: DecodedStunMessage | undefined;
    try {
      msg = decodeStunDatagram(buf);
    } catch {
      // Framed like a request but with broken attributes: 400 (RFC 8489 §6.3.1). Anything worse is dropped.
      const h = decodeStunHeader(buf);
      if (h.kind !== 'ok' || h.value.cls !== 'request' || h.value.length % 4 !== 0 || buf.length !== HEADER_BYTES + h.value.length) {
        return this.#drop('malformed');
      }
      return this.#error(h.value.method, h.value.transactionId, StunErrorCode.BadRequest, 'Bad Request', [], false, from, limit, buf.length);
    }
    if (!msg) return this.#drop('not-stun');
    if (msg.fingerprint === 'invalid') return this.#drop('bad-fingerprint');
    if (msg.cls !== 'request') return { kind: 'pass', message: msg };
    const fingerprint = msg.fingerprint === 'valid';
    if (msg.method !== StunMethod.Binding) {
      return this.#error(msg.method, msg.transactionId, StunErrorCode.BadRequest, 'Unsupported method', [], fingerprint, from, limit, buf.length);
    }
    if (msg.unknownAttributes.length > 0) {
      const list = [attr(UnknownAttributes, msg.unknownAttributes)];
      return this.#error(msg.method, msg.transactionId, StunErrorCode.UnknownAttribute, 'Unknown Attribute', list, fingerprint, from, limit, buf.length);
    }
    const mapped = attr(XorMappedAddress, { address: client.address, port: from.port, family: client.family });
    const full = this.#software === undefined ? [mapped] : [mapped, attr(Software, this.#software)];
    const out = this.#fit(limit, fingerprint, 'success', msg.method, msg.transactionId, [full, [mapped]]);
    if (!out || !this.replies.allows(out.length, buf.length)) return this.#drop('amplification');
    if (!this.#sendTo(out, from)) return this.#drop('send-error');
    this.counters.answered++;
    return { kind: 'answered' };
  }

  #error(
    method: number, tid: Buffer, code: number, reason: string, extra: AttributeEntry[], fingerprint: boolean, to: StunPeer, limit: number,
    received: number,
  ): StunServerOutcome {
    const variants = [[attr(ErrorCode, { code, reason }), ...extra], [attr(ErrorCode, { code, reason: '' }), ...extra]];
    const out = this.#fit(limit, fingerprint, 'error', method, tid, variants);
    if (!out || !this.replies.allows(out.length, received)) return this.#drop('amplification');
    if (!this.#sendTo(out, to)) return this.#drop('send-error');
    this.counters.errorResponses++;
    return { kind: 'error-response', code };
  }

  /** The first variant whose encoding fits `limit` bytes, or undefined. */
  #fit(
    limit: number, fingerprint: boolean, cls: 'success' | 'error', method: number, tid: Buffer, variants: readonly AttributeEntry[][],
  ): Buffer | undefined {
    for (const attrs of variants) {
      const bytes = encodeStunMessage(stunMessage(cls, method, tid, attrs), { fingerprint });
      if (bytes.length <= limit) return bytes;
    }
    return undefined;
  }

  #sendTo(bytes: Buffer, to: StunPeer): boolean {
    try {
      // Reply to the address exactly as the socket reported it (a dual-stack socket needs ::ffff:a.b.c.d).
      this.#send(bytes, to.port, to.address);
      return true;
    } catch {
      return false;
    }
  }

  #drop(reason: StunDropReason): StunServerOutcome {
    this.counters.dropped[reason]++;
    return { kind: 'dropped', reason };
  }
}

/**
 * A demultiplexer route for STUN datagrams: requests go to `server`; other well-formed STUN
 * (responses, indications) goes to `onOther`, typically a StunTransactionTable's
 * `handleResponse` when the same socket also runs client transactions.
 */
export function stunRoute(
  server: StunBindingServer,
  onOther?: (msg: DecodedStunMessage, from: StunPeer) => void,
): (buf: Buffer, from: StunPeer) => void {
  return (buf, from) => {
    const r = server.handleDatagram(buf, from);
    if (r.kind === 'pass') onOther?.(r.message, from);
  };
}

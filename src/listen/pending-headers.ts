import { LRUCache } from 'lru-cache';
import type { Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { PendingSlots, type PendingSlotsOptions } from '../admission/pending-slots.js';
import { RefusalHold } from '../admission/refusal-hold.js';
import type { StreamConn } from '../datapath/stream-datapath.js';
import type { TcpSessionPolicy } from '../session/session-policy.js';
import { readProxyHeader, type HeaderOutcome } from './proxy-header-reader.js';
import { isHeldConn, readHeldProxyHeader } from './held-proxy-header.js';

/**
 * The connections of trusted PROXY header senders on a TCP route (tcp-route.ts) while their
 * header is read: a fair share of pending slots per source (pending-slots.ts); senders that gave a
 * valid header before may evict others' when full; senders refused for want of a slot are held
 * unread so they cannot reconnect in a loop (refusal-hold.ts). The route admits, dials and
 * reports; this only bounds and reads.
 */
export class PendingHeaders {
  /** Trusted senders whose PROXY header is not read yet (fair share per source, pending-slots.ts). */
  readonly #slots: PendingSlots;
  /** Senders that gave a valid header before: their newcomers may evict others when full. */
  readonly #goodSenders = new LRUCache<string, true>({ max: 1024 });
  /** Senders refused for want of a pending slot, held unread so they cannot reconnect in a loop. */
  readonly #refused: RefusalHold;

  constructor(policy: TcpSessionPolicy, headerTimeoutMs: number | undefined, private readonly clock: Clock) {
    this.#slots = new PendingSlots(pendingSettings(policy));
    this.#refused = new RefusalHold({ holdMs: headerTimeoutMs ?? 5000, max: 16_384, maxPerSource: pendingSettings(policy).maxPerSource }, clock);
  }

  update(policy: TcpSessionPolicy): void {
    this.#slots.update(pendingSettings(policy));
  }

  /** Releases the connections held after a refusal (the route is draining). */
  close(): void {
    this.#refused.close();
  }

  /**
   * Reads the PROXY header of `down` from `peer` under a pending slot. False when no slot is free:
   * `down` is then held unread and the caller reports the refusal. Else `done` runs once with the
   * outcome, or 'evicted' when a good sender's newcomer took the slot (`down` is destroyed then).
   */
  read(down: StreamConn, peer: Endpoint, headerTimeoutMs: number, maxHeaderBytes: number, done: (r: HeaderOutcome | 'evicted') => void): boolean {
    let evicted = false;
    const pending = this.#slots.admit(peer.address, this.#goodSenders.has(peer.address), () => {
      evicted = true;
      down.destroy();
    });
    if (!pending.ok) {
      this.#refused.refuse(down.socket(), peer.address);
      return false;
    }
    const clock = this.clock;
    void (isHeldConn(down) ? readHeldProxyHeader(down, clock, headerTimeoutMs, maxHeaderBytes) : readProxyHeader(down.socket(), clock, headerTimeoutMs, maxHeaderBytes)).then((r) => {
      pending.slot.release();
      if (evicted) return done('evicted');
      if (r.ok) this.#goodSenders.set(peer.address, true);
      done(r);
    });
    return true;
  }
}

function pendingSettings(policy: TcpSessionPolicy): PendingSlotsOptions {
  const max = Math.max(1, policy.limits.maxPerRoute || 4096);
  return { max, maxPerSource: Math.min(max, policy.limits.maxPerSource || max) };
}

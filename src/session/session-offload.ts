import { budgetLeft, budgetReceived, budgetSent } from '../core/reply-budget.js';
import { offload, type Offload } from '../datapath/offload.js';
import type { UdpSession } from './udp-session.js';
import type { UdpSessionPolicy } from './session-policy.js';
import type { UdpClientSide } from './udp-client-side.js';

/**
 * Sweeps without a datagram after which a session's entries are removed (4 s at the longest
 * sweep). Only sessions that went on past one round trip have entries, so this costs idle
 * one-shot sessions nothing; shorter, a session that sends a burst every second or two (a game
 * tick, a client among a thousand behind one sender) was removed and handed over again each time.
 */
const IDLE_TICKS = 16;

/**
 * Datagrams (both ways) a session carries in JavaScript before it is handed over: its first
 * datagram after an answered round trip. A one-shot exchange (a DNS query, a probe, an idle
 * session's single echo) is never handed over: it would not gain from the batch, and an idle
 * session should cost no more than before (entries and their objects are about 1 KB per side);
 * a session that goes on is handed over at once, so a short burst is not carried in JavaScript.
 */
const OFFLOAD_AFTER = 3;

/** `n` as a small integer (int32) when it is one; larger counts stay as they are. */
const small = (n: number): number => (n >= 0 && n < 0x40000000 ? n | 0 : n);

/** What the offloads of a table need from it and from its client side. */
export interface OffloadOwner {
  readonly tick: number;
  /** The reply budget's ratio (0: none) and its current window. */
  readonly replyRatio: number;
  readonly replyWindow: number;
  readonly policy: UdpSessionPolicy;
  /** Datagrams of an offloaded session the batch could not send, to the table's `send-error` drops. */
  countSendError(n: number): void;
}


/**
 * The sessions of one table whose datagrams the native batch forwards (datapath/offload.ts).
 * TypeScript still decides: a session is handed over only once open, without a PROXY header to
 * add, without bandwidth limits, and with both of its sides able to (the tunnel side says so:
 * answered tag, fresh UDP, current keys). Its counters are folded into the session on the sweep
 * and whenever one of its datagrams takes the JavaScript path (credit used up, a reply over the
 * budget, a new source), so idle timeouts, records, metrics and the reply budget see every
 * datagram; the send budget's credit is topped up on those datagrams. The entries go when the
 * session ends, or at the next sweep once the tunnel side changed (keys, tag, address, mode).
 */
export class SessionOffloads {
  readonly #live = new Set<UdpSession>();

  constructor(
    private readonly clients: UdpClientSide,
    private readonly owner: OffloadOwner,
  ) {}

  get size(): number {
    return this.#live.size;
  }

  /** After a datagram of `s` took the JavaScript path: fold and top up, or try to hand it over. */
  step(s: UdpSession): void {
    const o = s.offload;
    if (o !== null) {
      if (!o.closed) {
        this.#fold(s, o);
        if (o.credit === 0) o.refill();
        return;
      }
      // Closed by its tunnel side (keys, address, tag, mode changed): folded, then handed over anew.
      this.remove(s);
    }
    if (s.packetsFromClient + s.packetsToClient < OFFLOAD_AFTER) return;
    // Unanswered: the table still has to see the first answer (it refunds admission, ends a PROXY `first` header).
    // Not an attempt (field reads only): the next datagram asks again, so a session that starts
    // with a burst is handed over at its first datagram after the answer, not at the next sweep
    // (up to 250 ms of its burst read, judged and, beyond its send budget, dropped in JavaScript,
    // its own socket not left unread: docs/expose.md, "Handed over at the first answer").
    if (s.state !== 'open' || s.unanswered || s.prefix !== null || s.bwUp !== null || s.bwDown !== null || s.channel === null) return;
    const t = this.owner;
    // An attempt asks both sides (keys, tags, sockets): at most once a sweep when it fails.
    s.offloadTried = t.tick;
    const a = this.clients.offloadEnd?.(s);
    const b = a ? s.channel.offloadEnd?.() : null;
    if (!a || !b) return;
    const clientPlain = a.kind !== 'tunnel';
    const plain = clientPlain ? a : b;
    const tunnel = clientPlain ? b : a;
    // The reply budget holds what goes to the client: only a plain client can be held to it here.
    if (plain.kind === 'tunnel' || tunnel.kind !== 'tunnel' || (!clientPlain && t.replyRatio !== 0)) return;
    const n = offload(plain, tunnel, t.policy.udp.maxDatagramBytes, t.replyRatio);
    if (n === null) return;
    s.offload = n;
    s.offloadClientPlain = clientPlain;
    s.offloadSeen = [0, 0, 0, 0, 0, 0, 0, 0];
    this.#live.add(s);
    if (t.replyRatio !== 0) n.allowance = budgetLeft(s, t.replyRatio, t.replyWindow);
  }

  /**
   * Folds every offloaded session; drops those whose tunnel side changed, and those idle for
   * IDLE_TICKS sweeps (an idle session costs its entries and their objects for nothing; its next
   * datagram hands it over again).
   */
  sweep(): void {
    const tick = this.owner.tick;
    for (const s of this.#live) {
      const o = s.offload!;
      this.#fold(s, o);
      // `live` asks the engine: its entries go when a socket closes or a key is released.
      if (tick - s.lastTick >= IDLE_TICKS || !o.live) this.remove(s);
    }
  }

  /** Folds every offloaded session's counts in now (a view is about to read them); removes nothing. */
  foldAll(): void {
    for (const s of this.#live) this.#fold(s, s.offload!);
  }

  /** The reply budget moved to a new window: the batch's allowances follow. */
  allowances(): void {
    const t = this.owner;
    if (t.replyRatio === 0) return;
    for (const s of this.#live) s.offload!.allowance = budgetLeft(s, t.replyRatio, t.replyWindow);
  }

  /**
   * Brings the session's counters and reply budget up to date before JavaScript judges one of its
   * datagrams (what the batch forwarded since the last fold counts against the same budget).
   */
  fold(s: UdpSession): void {
    if (s.offload !== null) this.#fold(s, s.offload);
  }

  /** Removes every session's entries (the table's policy changed: they are made again under the new one). */
  removeAll(): void {
    for (const s of [...this.#live]) this.remove(s);
  }

  /** Removes the entries of `s` and folds their last counts in. Idempotent. */
  remove(s: UdpSession): void {
    const o = s.offload;
    if (o === null) return;
    this.#fold(s, o);
    o.close();
    this.#fold(s, o);
    s.offload = null;
    s.offloadSeen = null;
    this.#live.delete(s);
  }

  #fold(s: UdpSession, o: Offload): void {
    const seen = s.offloadSeen!;
    if (o.pooled) this.#foldDrops(s, seen, o);
    // Lost in the batch's send (a full socket buffer, an ICMP error on the upstream's socket): not
    // among the datagrams forwarded, so counted apart, before the early return below.
    const lost = o.sendErrors - seen[6]!;
    if (lost !== 0) {
      seen[6]! += lost;
      this.owner.countSendError(lost);
    }
    const plain = s.offloadClientPlain;
    const pu = plain ? o.datagramsToTunnel : o.datagramsFromTunnel;
    const pd = plain ? o.datagramsFromTunnel : o.datagramsToTunnel;
    // The engine's counters are doubles; what one fold adds (one sweep's worth) is a small integer,
    // kept so: a double stored once in a session's counter makes that field a boxed number in
    // every session of the process (16 bytes each, per counter).
    const du = small(pu - seen[0]!);
    const dd = small(pd - seen[2]!);
    if (du === 0 && dd === 0) return;
    const bu = small((plain ? o.bytesToTunnel : o.bytesFromTunnel) - seen[1]!);
    const bd = small((plain ? o.bytesFromTunnel : o.bytesToTunnel) - seen[3]!);
    seen[0] = pu;
    seen[1] += bu;
    seen[2] = pd;
    seen[3] += bd;
    const t = this.owner;
    s.lastTick = t.tick;
    s.packetsFromClient += du;
    s.bytesFromClient += bu;
    s.packetsToClient += dd;
    s.bytesToClient += bd;
    if (t.replyRatio !== 0) {
      budgetReceived(s, bu, t.replyWindow);
      budgetSent(s, bd, t.replyWindow);
      o.allowance = budgetLeft(s, t.replyRatio, t.replyWindow);
    }
    o.tunnel.forwarded(plain ? du : dd, plain ? dd : du);
    if (o.pooled) o.tunnel.charge?.(plain ? du : dd);
  }

  /** What the send budget's pool dropped in the batch, to the session's and the budget's counts by reason. */
  #foldDrops(s: UdpSession, seen: number[], o: Offload): void {
    const b = o.droppedBudget - seen[4]!;
    const sh = o.droppedShare - seen[5]!;
    const st = o.droppedStale - seen[7]!;
    if (b === 0 && sh === 0 && st === 0) return;
    if (b + sh > 0) s.lastTick = this.owner.tick; // it sent: not idle, even with all of it dropped
    seen[4]! += b;
    seen[5]! += sh;
    seen[7]! += st;
    o.tunnel.dropped?.(b, sh, st);
  }
}

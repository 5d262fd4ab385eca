import type { UdpSession } from './udp-session.js';

/**
 * UDP sessions that look like one finished request/response exchange: the client sent one
 * datagram and the upstream answered it (a DNS query from `dig`, an NTP or STUN request). Such a
 * session holds its slot for the whole idle timeout although nothing more is coming, so a table
 * at its cap may end the oldest of them, once it has been quiet a moment, instead of refusing a
 * new client. Sessions that send a second datagram are never taken (games, VPNs, QUIC).
 *
 * Queues are in order of first answer, per source and overall; entries that stopped qualifying
 * (ended, or a second datagram came) are dropped lazily from the heads, and by `compact`.
 */
export class CompletedExchanges {
  readonly #all = new Queue();
  readonly #bySource = new Map<string, Queue>();

  /** Called once per session, at the upstream's first answer. */
  answered(s: UdpSession): void {
    if (s.packetsFromClient !== 1) return;
    this.#all.push(s);
    let q = this.#bySource.get(s.source);
    if (q === undefined) this.#bySource.set(s.source, (q = new Queue()));
    q.push(s);
  }

  /**
   * The oldest qualifying session of `source` (any source when undefined) whose last datagram
   * was in sweep tick `quietSinceTick` or earlier; it leaves the queues. The caller ends it.
   */
  take(source: string | undefined, quietSinceTick: number): UdpSession | undefined {
    const q = source === undefined ? this.#all : this.#bySource.get(source);
    if (q === undefined) return undefined;
    const s = q.head();
    if (s === undefined || s.lastTick > quietSinceTick) return undefined;
    q.shift();
    return s;
  }

  /** Drops heads that no longer qualify; run by the table's sweep so the queues stay bounded. */
  compact(): void {
    this.#all.head();
    for (const [source, q] of this.#bySource) if (q.head() === undefined) this.#bySource.delete(source);
  }
}

const qualifies = (s: UdpSession) => s.state === 'open' && s.packetsFromClient === 1;

class Queue {
  #items: UdpSession[] = [];
  #start = 0;

  push(s: UdpSession): void {
    this.#items.push(s);
  }

  /** The first session that still qualifies, dropping the ones before it. */
  head(): UdpSession | undefined {
    while (this.#start < this.#items.length && !qualifies(this.#items[this.#start]!)) this.#start++;
    if (this.#start > 64 && this.#start * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#start);
      this.#start = 0;
    }
    return this.#items[this.#start];
  }

  shift(): void {
    this.#start++;
  }
}

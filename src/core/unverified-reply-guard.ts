/**
 * The one check every socket makes before it sends something Sluice itself originates (STUN
 * responses, ICE check answers and errors, tunnel keepalive answers, udpexposer Retry and
 * Registered tokens) to a source that has not proved it receives at that address: the reply is
 * at most `UNVERIFIED_REPLY_FACTOR` (3) times the datagram that asked for it (QUIC's bound, RFC
 * 9000 §8.1). Each reply is checked against its own request, so the sum of replies to any
 * source is at most 3x the sum of what it sent, with no state per source and no way to unlock
 * more: nothing an unverified sender does raises the factor.
 *
 * Relayed replies (what an upstream answers) are a different budget (reply-budget.ts).
 */
export const UNVERIFIED_REPLY_FACTOR = 3;

export interface UnverifiedReplyCounters {
  /** Bytes of the datagrams that asked (those answered and those refused). */
  bytesIn: number;
  /** Bytes of the replies sent. */
  bytesOut: number;
  replies: number;
  /** Replies not sent because they were over the bound. */
  refused: number;
}

export class UnverifiedReplyGuard {
  readonly counters: UnverifiedReplyCounters = { bytesIn: 0, bytesOut: 0, replies: 0, refused: 0 };

  /** Largest reply allowed for a request of `received` bytes (for responders that can shorten a reply). */
  static limit(received: number): number {
    return UNVERIFIED_REPLY_FACTOR * received;
  }

  /**
   * Whether a reply of `reply` bytes to a request of `received` bytes may go; counts both. The
   * caller sends it only when this returns true.
   */
  allows(reply: number, received: number): boolean {
    const c = this.counters;
    c.bytesIn += received;
    if (reply > UNVERIFIED_REPLY_FACTOR * received) {
      c.refused++;
      return false;
    }
    c.bytesOut += reply;
    c.replies++;
    return true;
  }
}

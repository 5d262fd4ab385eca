import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { NONCE_FUTURE_SECONDS, NONCE_PAST_SECONDS, STATS_NONCE } from '../protocol/udpexposer/constants.js';

/**
 * The u64 a password-mode server puts in `Retry` and expects echoed back, signed, from the same
 * source. udpexposer uses `unix_seconds XOR SipHash(addr)` with fixed zero keys; a client only
 * copies the digits, so any value the server can check later is wire-compatible.
 *
 * Sluice's value is a stateless cookie: high 32 bits = unix seconds (mod 2^32), low 32 bits =
 * HMAC-SHA256(per-process secret, seconds | address | port) truncated. It is accepted within
 * udpexposer's window (10 s past, 1 s future), from the address it was issued to, and once: an
 * accepted value goes into a small replay set until it expires, so a captured echo cannot move
 * the client back to an old address (threats-and-tests EXP-2).
 */

export type CookieCheck = 'ok' | 'stale' | 'forged' | 'replayed';

const WINDOW_SLACK_S = NONCE_PAST_SECONDS + NONCE_FUTURE_SECONDS + 1;
/** Each entry needs a valid signed echo (the password), so this only bounds a misbehaving client. */
const MAX_REMEMBERED = 4096;

export class RetryCookies {
  readonly #secret: Buffer;
  readonly #clock: Clock;
  /** Accepted nonces → unix seconds after which they can be forgotten. */
  readonly #used = new Map<bigint, number>();

  constructor(clock: Clock, secret: Buffer = randomBytes(32)) {
    this.#clock = clock;
    this.#secret = Buffer.from(secret);
  }

  /** A fresh value for `Retry`, bound to the peer (canonical address) and the current second. */
  issue(address: string, port: number): bigint {
    const secs = this.#secs() >>> 0;
    const v = (BigInt(secs) << 32n) | BigInt(this.#mac(secs, address, port).readUInt32BE(0));
    // u64::MAX means "stats request"; it would take secs = 2^32 - 1 and an all-ones MAC.
    return v === STATS_NONCE ? v - 1n : v;
  }

  /** Checks an echoed value from `address:port` and, if it is good, burns it. */
  check(nonce: bigint, address: string, port: number): CookieCheck {
    const now = this.#secs();
    const secs = Number((nonce >> 32n) & 0xffff_ffffn);
    const age = ((now >>> 0) - secs) | 0; // signed difference mod 2^32
    if (age < -NONCE_FUTURE_SECONDS || age > NONCE_PAST_SECONDS) return 'stale';
    const mac = Buffer.alloc(4);
    mac.writeUInt32BE(Number(nonce & 0xffff_ffffn), 0);
    if (!timingSafeEqual(mac, this.#mac(secs, address, port).subarray(0, 4))) return 'forged';
    this.#forgetExpired(now);
    if (this.#used.has(nonce)) return 'replayed';
    if (this.#used.size >= MAX_REMEMBERED) this.#used.delete(this.#used.keys().next().value!);
    this.#used.set(nonce, now + WINDOW_SLACK_S);
    return 'ok';
  }

  #secs(): number {
    return Math.floor(this.#clock.wallNow() / 1000);
  }

  #mac(secs: number, address: string, port: number): Buffer {
    return createHmac('sha256', this.#secret).update(`udpexposer-retry|${secs >>> 0}|${address}|${port}`).digest();
  }

  #forgetExpired(now: number): void {
    for (const [n, until] of this.#used) {
      if (until > now) break; // insertion order is expiry order
      this.#used.delete(n);
    }
  }
}

/** Distinct strings kept at most; past it the pool starts over (a bound, not a cache policy). */
const POOL_MAX = 4096;

/**
 * One copy of each address string a table's sessions hold: every new session's datagram spells its
 * address afresh (a string of 30-50 bytes), and many clients share one address (ports behind one
 * NAT, one proxy). Asked once per new session, never per datagram.
 */
export class StringPool {
  readonly #strings = new Map<string, string>();

  intern(s: string): string {
    const known = this.#strings.get(s);
    if (known !== undefined) return known;
    if (this.#strings.size >= POOL_MAX) this.#strings.clear();
    this.#strings.set(s, s);
    return s;
  }
}

import { Resolver as DnsResolver } from 'node:dns/promises';
import { lookup } from 'node:dns/promises';
import { canonicalIp, type Endpoint } from '../../core/address.js';
import type { Clock, Timer } from '../../core/clock.js';

/** A name's addresses with how long each may be kept (seconds). */
export type NameResolver = (host: string) => Promise<{ address: string; family: 4 | 6; ttl: number }[]>;

/** TTL used for answers that carry none (names from /etc/hosts through the system's lookup). */
const HOSTS_TTL_S = 30;
/** Re-resolution is never sooner than this nor later than MAX (a TTL of 0 must not spin). */
const MIN_REFRESH_MS = 5_000;
const MAX_REFRESH_MS = 3_600_000;
/** A failed resolution keeps the addresses it had and tries again after this. */
const RETRY_MS = 30_000;
/** Most addresses one name adds to a pool. */
export const MAX_ADDRESSES_PER_NAME = 16;

/** DNS A and AAAA with their TTLs; a name DNS does not know is tried through the system lookup (/etc/hosts). */
export const systemNameResolver: NameResolver = async (host) => {
  const dns = new DnsResolver({ timeout: 3000, tries: 2 });
  const [v4, v6] = await Promise.allSettled([dns.resolve4(host, { ttl: true }), dns.resolve6(host, { ttl: true })]);
  const out = [
    ...(v4.status === 'fulfilled' ? v4.value.map((a) => ({ address: a.address, family: 4 as const, ttl: a.ttl })) : []),
    ...(v6.status === 'fulfilled' ? v6.value.map((a) => ({ address: a.address, family: 6 as const, ttl: a.ttl })) : []),
  ];
  if (out.length > 0) return out;
  const all = await lookup(host, { all: true, verbatim: true });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? (6 as const) : (4 as const), ttl: HOSTS_TTL_S }));
};

/**
 * The addresses of one member name, resolved now and again when their TTL runs out. `onChange`
 * gets the new list whenever it differs (each address becomes a pool member).
 */
export class NameWatch {
  #addresses: Endpoint[] = [];
  #timer: Timer | undefined;
  #closed = false;

  constructor(
    readonly host: string,
    private readonly port: number,
    private readonly resolver: NameResolver,
    private readonly clock: Clock,
    private readonly onChange: (addresses: readonly Endpoint[]) => void,
  ) {}

  get addresses(): readonly Endpoint[] {
    return this.#addresses;
  }

  /** Resolves once (the caller may await the first answer) and keeps resolving on the TTL. */
  async refresh(): Promise<void> {
    if (this.#closed) return;
    let next = RETRY_MS;
    try {
      const found = await this.resolver(this.host);
      const addrs = found
        .map((a) => ({ ip: canonicalIp(a.address), ttl: a.ttl }))
        .filter((a): a is { ip: NonNullable<typeof a.ip>; ttl: number } => a.ip !== undefined)
        .slice(0, MAX_ADDRESSES_PER_NAME);
      if (addrs.length > 0) {
        next = Math.min(MAX_REFRESH_MS, Math.max(MIN_REFRESH_MS, Math.min(...addrs.map((a) => a.ttl)) * 1000));
        const list = addrs.map((a) => ({ address: a.ip.address, port: this.port, family: a.ip.family }));
        const same = list.length === this.#addresses.length && list.every((e, i) => e.address === this.#addresses[i]!.address);
        this.#addresses = list;
        if (!same && !this.#closed) this.onChange(list);
      }
    } catch {
      // Keep what we had; the next try is RETRY_MS away.
    }
    if (this.#closed) return;
    this.#timer?.cancel();
    this.#timer = this.clock.setTimeout(() => void this.refresh(), next);
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }
}

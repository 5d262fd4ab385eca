import type { Family } from '../../core/address.js';
import type { Clock } from '../../core/clock.js';
import type { BanInfo } from '../../observe/events.js';
import { parseCidr, type Cidr } from '../../core/cidr.js';
import { CidrSet } from '../../core/cidr-set.js';
import { embeddedIpv4 } from '../../core/embedded-ipv4.js';
import { formatIpv4, parseIpValue } from '../../core/ip-value.js';

/** What happened to the list, for persistence, events and re-judging live sessions. */
export type BanChange = { kind: 'added'; ban: BanInfo } | { kind: 'removed' | 'expired'; ban: BanInfo };

/** A ban as a caller asks for it: `target` is an address or a network in any spelling parseCidr takes. */
export interface BanRequest {
  readonly target: string;
  readonly source: string;
  readonly reason: string;
  readonly durationMs: number;
}

interface Entry {
  readonly info: BanInfo;
  readonly cidr: Cidr;
}

/**
 * The ban list in memory (docs/bans.md). Bans are networks (a single address is a /32 or /128)
 * held in a CidrSet, the same structure and matching as the ACL's deny rules: an IPv4-mapped
 * client is its IPv4 address, and an IPv6 client embedding an IPv4 address (6to4, NAT64, ...) is
 * refused by a ban covering that IPv4 address. A lookup is one binary search per family; the set is
 * rebuilt only when the list changes or its earliest ban expires (bans change rarely, lookups run
 * for every new session). Networks in `allow` are never refused, whatever the list says.
 *
 * Times are wall-clock milliseconds from the injected clock, so a ban kept in the state file
 * ends at the same moment after a restart. One owner mutates; `onChange` listeners run
 * synchronously after each change and must not throw.
 */
export class BanStore {
  readonly #byTarget = new Map<string, Entry>();
  #set = new CidrSet([]);
  #dirty = false;
  /** The earliest expiry in the list: a lookup at or after it sweeps first. */
  #validUntil = Infinity;
  #allow = new CidrSet([]);
  readonly #listeners: ((c: BanChange) => void)[] = [];

  constructor(private readonly clock: Pick<Clock, 'wallNow'>) {}

  /** Networks never refused (`bans.allow`); texts must already be valid (config-checked). */
  setAllow(cidrs: readonly string[]): void {
    this.#allow = new CidrSet(cidrs.map((t) => parseCidr(t) as Cidr));
  }

  onChange(listener: (c: BanChange) => void): void {
    this.#listeners.push(listener);
  }

  /** Live bans (expired ones are swept first). */
  get size(): number {
    this.#sweepIfDue();
    return this.#byTarget.size;
  }

  list(): BanInfo[] {
    this.#sweepIfDue();
    return [...this.#byTarget.values()].map((e) => e.info);
  }

  /** The live ban on exactly `target` (canonical network text), if any. */
  get(target: string): BanInfo | undefined {
    this.#sweepIfDue();
    return this.#byTarget.get(target)?.info;
  }

  /** True when `client` is in an allow network (never banned). */
  allowed(address: string): boolean {
    const ip = parseIpValue(address);
    return ip !== undefined && this.#allow.size > 0 && this.#allow.match(ip) !== undefined;
  }

  /**
   * Adds (or replaces) the ban on `req.target`. Returns the ban, or a message when the target is
   * not an address or network, the duration is not positive, or the whole target lies inside an
   * allow network (a ban there could never refuse anyone).
   */
  add(req: BanRequest): BanInfo | string {
    const cidr = parseCidr(req.target);
    if (typeof cidr === 'string') return `target: ${cidr}`;
    if (!(req.durationMs > 0) || !Number.isFinite(req.durationMs)) return 'duration: must be a positive duration such as 1h';
    const inside = this.#allow.size > 0 ? this.#allow.match({ family: cidr.family, words: cidr.words }) : undefined;
    if (inside && inside.prefix <= cidr.prefix) return `target: ${cidr.text} is inside bans.allow ${inside.text}, which is never banned`;
    const now = this.clock.wallNow();
    const info: BanInfo = { target: targetText(cidr), source: req.source, reason: req.reason, createdAt: now, expiresAt: now + req.durationMs };
    this.#put(info, cidr);
    this.#emit({ kind: 'added', ban: info });
    return info;
  }

  /**
   * Takes a ban made elsewhere (another gateway of a fleet, docs/fleet.md) as it is: same source,
   * reason and times, reported as `added`. Returns false, changing nothing, when it has ended, its
   * target is malformed, or the list already holds that target until the same time or later.
   */
  adopt(ban: BanInfo): boolean {
    const cidr = parseCidr(ban.target);
    if (typeof cidr === 'string' || !(ban.expiresAt > this.clock.wallNow())) return false;
    const info: BanInfo = { ...ban, target: targetText(cidr) };
    const held = this.#byTarget.get(info.target)?.info;
    if (held && held.expiresAt >= info.expiresAt) return false;
    this.#put(info, cidr);
    this.#emit({ kind: 'added', ban: info });
    return true;
  }

  /** Puts back bans read from the state file; expired ones and bad targets are skipped. Returns how many were kept. */
  restore(bans: readonly BanInfo[]): number {
    const now = this.clock.wallNow();
    let kept = 0;
    for (const b of bans) {
      const cidr = parseCidr(b.target);
      if (typeof cidr === 'string' || b.expiresAt <= now) continue;
      this.#put({ ...b, target: targetText(cidr) }, cidr);
      kept++;
    }
    return kept;
  }

  /** Removes the ban on `target` (any spelling); returns it, or undefined when there was none. */
  remove(target: string): BanInfo | undefined {
    const cidr = parseCidr(target);
    const e = typeof cidr === 'string' ? undefined : this.#byTarget.get(targetText(cidr));
    if (!e) return undefined;
    this.#byTarget.delete(e.info.target);
    this.#dirty = true;
    this.#emit({ kind: 'removed', ban: e.info });
    return e.info;
  }

  /** The detail of the ban refusing `address` now, or undefined. `address` is canonical (canonicalIp). */
  check(address: string, _family: Family): string | undefined {
    if (this.#byTarget.size === 0) return undefined;
    const m = this.#match(address);
    return m && `${m.ban.target} banned by ${m.ban.source}: ${m.ban.reason}${m.via}`;
  }

  /**
   * The ban refusing a per-source key (an address, or a network such as `2001:db8:1:2::/64`,
   * judged by its first address), for views such as /api/sources; undefined when none.
   */
  banOf(sourceKey: string): BanInfo | undefined {
    if (this.#byTarget.size === 0) return undefined;
    const slash = sourceKey.indexOf('/');
    return this.#match(slash < 0 ? sourceKey : sourceKey.slice(0, slash))?.ban;
  }

  #match(address: string): { ban: BanInfo; via: string } | undefined {
    this.#sweepIfDue();
    const set = this.#table();
    if (set.size === 0) return undefined;
    const ip = parseIpValue(address);
    if (!ip) return undefined;
    if (this.#allow.size > 0 && this.#allow.match(ip)) return undefined;
    const hit = set.match(ip);
    if (hit) return { ban: this.#byTarget.get(targetText(hit))!.info, via: '' };
    for (const e of embeddedIpv4(ip)) {
      const c = set.matchIpv4(e.v4);
      if (c) return { ban: this.#byTarget.get(targetText(c))!.info, via: `, ${e.form} address embeds ${formatIpv4(e.v4)}` };
    }
    return undefined;
  }

  /** Drops expired bans now, reporting each as `expired`. */
  sweep(): void {
    const now = this.clock.wallNow();
    let next = Infinity;
    for (const [target, e] of [...this.#byTarget]) {
      if (e.info.expiresAt <= now) {
        this.#byTarget.delete(target);
        this.#dirty = true;
        this.#emit({ kind: 'expired', ban: e.info });
      } else next = Math.min(next, e.info.expiresAt);
    }
    this.#validUntil = next;
  }

  #sweepIfDue(): void {
    if (this.clock.wallNow() >= this.#validUntil) this.sweep();
  }

  #put(info: BanInfo, cidr: Cidr): void {
    this.#byTarget.set(info.target, { info, cidr });
    this.#dirty = true;
    this.#validUntil = Math.min(this.#validUntil, info.expiresAt);
  }

  #table(): CidrSet {
    if (this.#dirty) {
      this.#set = new CidrSet([...this.#byTarget.values()].map((e) => e.cidr));
      this.#dirty = false;
    }
    return this.#set;
  }

  #emit(c: BanChange): void {
    for (const l of this.#listeners) l(c);
  }
}

/** How a ban names what it covers: a single address without its /32 or /128, as per-source keys do (source-key.ts). */
function targetText(c: Cidr): string {
  return c.prefix === (c.family === 4 ? 32 : 128) ? c.text.slice(0, c.text.lastIndexOf('/')) : c.text;
}

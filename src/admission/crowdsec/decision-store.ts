import { CidrSet } from '../../core/cidr-set.js';
import type { Cidr } from '../../core/cidr.js';
import { embeddedIpv4, type EmbeddedIpv4 } from '../../core/embedded-ipv4.js';
import { formatIpv4, formatIpValue, type IpValue } from '../../core/ip-value.js';
import { targetText, type Ban, type StreamBody } from './stream-body.js';
import { sourceKey } from '../source-key.js';
import type { SourcePrefix } from '../../core/source-prefix.js';

/** Bans mean what CrowdSec says: one address per Ip decision. */
const AS_DECIDED: SourcePrefix = Object.freeze({ ipv4: 32, ipv6: 128 });

/**
 * A ban in the store: what it matches and until when. Entries sharing a slot (one address or
 * network banned by several decisions) form a chain through `next`, so the common case of one
 * decision per address costs one object and no array. The detail text is built only on a match.
 */
class Entry {
  next: Entry | undefined = undefined;
  constructor(
    readonly ban: Ban,
    /** Map key for Ip scope (uint32 for IPv4, canonical text for IPv6); Range scope: the network's text. */
    readonly slot: number | string,
    /** Monotonic milliseconds (Clock.now) when the ban ends; Infinity for none. */
    readonly expiresAt: number,
    /** Monotonic milliseconds when this store received the decision. */
    readonly addedAt: number,
  ) {}

  get detail(): string {
    const b = this.ban;
    const what = `${b.target.scope === 'ip' ? 'Ip' : 'Range'} ${targetText(b.target)}`;
    return `${b.scenario || 'no scenario'} (ban on ${what}${b.origin ? `, origin ${b.origin}` : ''})`;
  }
}

/** What matched a client: the ban's detail, with the embedded-IPv4 form when that is how it matched. */
export interface BanMatch {
  readonly detail: string;
}

/** A decision held, for views (the admin API's ban list): times are monotonic milliseconds. */
export interface HeldDecision {
  readonly ban: Ban;
  readonly addedAt: number;
  /** Infinity when the decision has no duration. */
  readonly expiresAt: number;
}

/**
 * The decisions in memory, answering "is this client banned" synchronously without text
 * handling for IPv4: single addresses in maps (IPv4 by uint32, IPv6 by canonical text), ranges in
 * a CidrSet rebuilt only when the ranges change or one of them expires.
 *
 * Several decisions may ban one address or network (different scenarios, ids); each is kept by
 * its identity, so deleting one leaves the others in force. Expiry is honoured at lookup time,
 * so a ban ends on time even when no pull happens; `sweep` frees the memory.
 *
 * Addresses are matched as the ACL's deny rules match them (docs/access-control.md): an
 * IPv4-mapped client is its IPv4 address, and an IPv6 client that embeds an IPv4 address
 * (6to4, NAT64, Teredo, ...) is also refused by a ban on that IPv4 address or a range holding it.
 * With a `banPrefix` narrower than the address (`crowdsec.banPrefix`, e.g. IPv6 /64), an Ip
 * decision bans the client's whole network of that length, so a banned IPv6 subscriber cannot
 * step around the ban by changing its /128.
 * Not safe for concurrent mutation; one owner (the bouncer) applies pulls, lookups are reads.
 */
export class DecisionStore {
  readonly #prefix: SourcePrefix;
  /** IPv4 host-bit mask of the ban prefix (all ones for /32). */
  readonly #v4Mask: number;

  constructor(banPrefix: SourcePrefix = AS_DECIDED) {
    this.#prefix = banPrefix;
    this.#v4Mask = banPrefix.ipv4 >= 32 ? 0xffffffff : banPrefix.ipv4 <= 0 ? 0 : (~0 << (32 - banPrefix.ipv4)) >>> 0;
  }


  readonly #byKey = new Map<string, Entry>();
  readonly #v4 = new Map<number, Entry>();
  readonly #v6 = new Map<string, Entry>();
  readonly #ranges = new Map<string, Entry>();
  #rangeSet = new CidrSet([]);
  #rangesDirty = false;
  /** The earliest expiry among ranges: a lookup at or after it rebuilds the set first. */
  #rangesValidUntil = Infinity;

  /** Distinct banned addresses and networks (not decisions). */
  get size(): { ips: number; ranges: number } {
    return { ips: this.#v4.size + this.#v6.size, ranges: this.#ranges.size };
  }

  /** Number of decisions held. */
  get decisions(): number {
    return this.#byKey.size;
  }

  /** Replaces everything with `body.added` (a startup=true answer); its `deleted` list is irrelevant. */
  replace(body: StreamBody, now: number): void {
    this.#byKey.clear();
    this.#v4.clear();
    this.#v6.clear();
    this.#ranges.clear();
    this.#rangesDirty = true;
    for (const b of body.added) this.#add(b, now);
  }

  /** Applies a delta: deletions first, then additions (a decision re-sent with a new duration replaces the old one). */
  apply(body: StreamBody, now: number): void {
    for (const key of body.deleted) this.#remove(key);
    for (const b of body.added) this.#add(b, now);
  }

  /** The ban that refuses `ip` at monotonic time `now`, or undefined. */
  match(ip: IpValue, now: number): BanMatch | undefined {
    if (ip.family === 4) return this.#matchV4(ip.words[0]!, now, undefined);
    if (this.#v6.size > 0) {
      const key = this.#v6Key(ip);
      const hit = live(this.#v6.get(key), now);
      if (hit) return { detail: key.includes('/') ? `${hit.detail}, widened to ${key}` : hit.detail };
    }
    const ranges = this.#rangeTable(now);
    if (ranges.size > 0) {
      const c = ranges.match(ip);
      const hit = c && live(this.#ranges.get(c.text), now);
      if (hit) return { detail: hit.detail };
    }
    for (const e of embeddedIpv4(ip)) {
      const hit = this.#matchV4(e.v4, now, e);
      if (hit) return hit;
    }
    return undefined;
  }

  /** Map key of an IPv6 address: its canonical text, or its ban-prefix network (`2001:db8:1:2::/64`). */
  #v6Key(ip: IpValue): string {
    const text = formatIpValue(ip);
    return this.#prefix.ipv6 >= 128 ? text : sourceKey({ address: text, family: 6 }, this.#prefix);
  }

  /**
   * The live decisions from `offset`, at most `limit` of them, in the order they were received,
   * and how many are live in all. One pass over the decisions without copying them (about 0.3 ms
   * per 100,000), so a listing stays cheap whatever the list holds.
   */
  list(now: number, offset: number, limit: number): { total: number; decisions: HeldDecision[] } {
    const decisions: HeldDecision[] = [];
    let total = 0;
    for (const e of this.#byKey.values()) {
      if (e.expiresAt <= now) continue;
      if (total >= offset && decisions.length < limit) decisions.push(e);
      total++;
    }
    return { total, decisions };
  }

  /**
   * The live decisions on exactly `target` (an Ip decision on that address, or a Range decision on
   * that network), in the order received: what a request to lift the ban on that target is about.
   */
  on(target: Cidr, now: number): HeldDecision[] {
    const out: HeldDecision[] = [];
    const collect = (head: Entry | undefined, same: (e: Entry) => boolean) => {
      for (let e = head; e; e = e.next) if (e.expiresAt > now && same(e)) out.push(e);
    };
    if (target.prefix === (target.family === 4 ? 32 : 128)) {
      const text = formatIpValue(target);
      const head = target.family === 4 ? this.#v4.get((target.words[0]! & this.#v4Mask) >>> 0) : this.#v6.get(this.#v6Key(target));
      collect(head, (e) => targetText(e.ban.target) === text);
    }
    collect(this.#ranges.get(target.text), () => true);
    return out;
  }

  /**
   * The live decision refusing `ip` (as `match` finds it, without the detail text), or undefined.
   * For views such as /api/sources; the data path uses `match`.
   */
  find(ip: IpValue, now: number): HeldDecision | undefined {
    if (ip.family === 4) return this.#findV4(ip.words[0]!, now);
    const v6 = this.#v6.size > 0 ? live(this.#v6.get(this.#v6Key(ip)), now) : undefined;
    if (v6) return v6;
    const ranges = this.#rangeTable(now);
    const c = ranges.size > 0 ? ranges.match(ip) : undefined;
    const r = c && live(this.#ranges.get(c.text), now);
    if (r) return r;
    for (const e of embeddedIpv4(ip)) {
      const hit = this.#findV4(e.v4, now);
      if (hit) return hit;
    }
    return undefined;
  }

  #findV4(v4: number, now: number): Entry | undefined {
    const hit = this.#v4.size > 0 ? live(this.#v4.get((v4 & this.#v4Mask) >>> 0), now) : undefined;
    if (hit) return hit;
    const ranges = this.#rangeTable(now);
    const c = ranges.size > 0 ? ranges.matchIpv4(v4) : undefined;
    return (c && live(this.#ranges.get(c.text), now)) || undefined;
  }

  /** Drops expired decisions (memory only: lookups already ignore them). */
  sweep(now: number): void {
    for (const e of [...this.#byKey.values()]) if (e.expiresAt <= now) this.#remove(e.ban.key);
  }

  #matchV4(v4: number, now: number, via: EmbeddedIpv4 | undefined): BanMatch | undefined {
    const hit = this.#findV4(v4, now);
    if (!hit) return undefined;
    const widened = typeof hit.slot === 'number' && this.#v4Mask !== 0xffffffff ? `, widened to ${formatIpv4(hit.slot)}/${this.#prefix.ipv4}` : '';
    return { detail: via ? `${hit.detail}${widened}, ${via.form} address embeds ${formatIpv4(via.v4)}` : `${hit.detail}${widened}` };
  }

  /** The range set, rebuilt first if ranges changed or one expired (so an expired narrow range cannot hide a live wider one). */
  #rangeTable(now: number): CidrSet {
    if (!this.#rangesDirty && now < this.#rangesValidUntil) return this.#rangeSet;
    let validUntil = Infinity;
    const cidrs: Cidr[] = [];
    for (const head of [...this.#ranges.values()]) {
      let alive: Entry | undefined;
      for (let e: Entry | undefined = head; e; ) {
        const next: Entry | undefined = e.next; // #remove unlinks e
        if (e.expiresAt <= now) this.#remove(e.ban.key);
        else {
          alive ??= e;
          validUntil = Math.min(validUntil, e.expiresAt);
        }
        e = next;
      }
      if (alive) cidrs.push((alive.ban.target as { cidr: Cidr }).cidr);
    }
    this.#rangeSet = new CidrSet(cidrs);
    this.#rangesValidUntil = validUntil;
    this.#rangesDirty = false;
    return this.#rangeSet;
  }

  #add(b: Ban, now: number): void {
    if (this.#byKey.size > 0) this.#remove(b.key);
    const t = b.target;
    const expiresAt = now + b.remainingMs;
    let e: Entry;
    if (t.scope === 'range') {
      e = new Entry(b, t.cidr.text, expiresAt, now);
      chain(this.#ranges, t.cidr.text, e);
      this.#rangesDirty = true;
    } else if (t.ip.family === 4) {
      const slot = (t.ip.words[0]! & this.#v4Mask) >>> 0;
      e = new Entry(b, slot, expiresAt, now);
      chain(this.#v4, slot, e);
    } else {
      const text = this.#v6Key(t.ip);
      e = new Entry(b, text, expiresAt, now);
      chain(this.#v6, text, e);
    }
    this.#byKey.set(b.key, e);
  }

  #remove(key: string): void {
    const e = this.#byKey.get(key);
    if (!e) return;
    this.#byKey.delete(key);
    if (e.ban.target.scope === 'range') {
      unchain(this.#ranges, e.slot as string, e);
      this.#rangesDirty = true;
    } else if (typeof e.slot === 'number') {
      unchain(this.#v4, e.slot, e);
    } else {
      unchain(this.#v6, e.slot, e);
    }
  }
}

function live(head: Entry | undefined, now: number): Entry | undefined {
  for (let e = head; e; e = e.next) if (e.expiresAt > now) return e;
  return undefined;
}

function chain<K>(map: Map<K, Entry>, k: K, e: Entry): void {
  const head = map.get(k);
  if (!head) {
    map.set(k, e);
    return;
  }
  let last = head;
  while (last.next) last = last.next;
  last.next = e;
}

function unchain<K>(map: Map<K, Entry>, k: K, e: Entry): void {
  const head = map.get(k);
  if (head === e) {
    if (e.next) map.set(k, e.next);
    else map.delete(k);
    e.next = undefined;
    return;
  }
  for (let p = head; p; p = p.next) {
    if (p.next === e) {
      p.next = e.next;
      e.next = undefined;
      return;
    }
  }
}

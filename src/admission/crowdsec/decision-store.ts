import { CidrSet } from '../acl/cidr-set.js';
import type { Cidr } from '../acl/cidr.js';
import { embeddedIpv4, type EmbeddedIpv4 } from '../acl/embedded-ipv4.js';
import { formatIpv4, formatIpValue, type IpValue } from '../acl/ip-value.js';
import { targetText, type Ban, type StreamBody } from './stream-body.js';

/** A ban in the store: what it matches, until when, and the denial detail, written once. */
interface Entry {
  readonly key: string;
  /** Map key for Ip scope (uint32 for IPv4, canonical text for IPv6); Range scope: the network's text. */
  readonly slot: number | string;
  readonly range: Cidr | undefined;
  /** Monotonic milliseconds (Clock.now) when the ban ends; Infinity for none. */
  readonly expiresAt: number;
  readonly detail: string;
}

/** What matched a client: the ban's detail, with the embedded-IPv4 form when that is how it matched. */
export interface BanMatch {
  readonly detail: string;
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
 * Not safe for concurrent mutation; one owner (the bouncer) applies pulls, lookups are reads.
 */
export class DecisionStore {
  readonly #byKey = new Map<string, Entry>();
  readonly #v4 = new Map<number, Entry[]>();
  readonly #v6 = new Map<string, Entry[]>();
  readonly #ranges = new Map<string, Entry[]>();
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
      const hit = live(this.#v6.get(formatIpValue(ip)), now);
      if (hit) return hit;
    }
    const ranges = this.#rangeTable(now);
    if (ranges.size > 0) {
      const c = ranges.match(ip);
      const hit = c && live(this.#ranges.get(c.text), now);
      if (hit) return hit;
    }
    for (const e of embeddedIpv4(ip)) {
      const hit = this.#matchV4(e.v4, now, e);
      if (hit) return hit;
    }
    return undefined;
  }

  /** Drops expired decisions (memory only: lookups already ignore them). */
  sweep(now: number): void {
    for (const e of [...this.#byKey.values()]) if (e.expiresAt <= now) this.#remove(e.key);
  }

  #matchV4(v4: number, now: number, via: EmbeddedIpv4 | undefined): BanMatch | undefined {
    let hit = this.#v4.size > 0 ? live(this.#v4.get(v4), now) : undefined;
    if (!hit) {
      const ranges = this.#rangeTable(now);
      if (ranges.size === 0) return undefined;
      const c = ranges.matchIpv4(v4);
      hit = c && live(this.#ranges.get(c.text), now);
    }
    if (!hit || !via) return hit;
    return { detail: `${hit.detail}, ${via.form} address embeds ${formatIpv4(via.v4)}` };
  }

  /** The range set, rebuilt first if ranges changed or one expired (so an expired narrow range cannot hide a live wider one). */
  #rangeTable(now: number): CidrSet {
    if (!this.#rangesDirty && now < this.#rangesValidUntil) return this.#rangeSet;
    let validUntil = Infinity;
    const cidrs: Cidr[] = [];
    for (const [text, entries] of this.#ranges) {
      const alive = entries.filter((e) => e.expiresAt > now);
      if (alive.length === 0) {
        this.#ranges.delete(text);
        for (const e of entries) this.#byKey.delete(e.key);
        continue;
      }
      if (alive.length !== entries.length) {
        for (const e of entries) if (e.expiresAt <= now) this.#byKey.delete(e.key);
        this.#ranges.set(text, alive);
      }
      for (const e of alive) validUntil = Math.min(validUntil, e.expiresAt);
      cidrs.push(alive[0]!.range!);
    }
    this.#rangeSet = new CidrSet(cidrs);
    this.#rangesValidUntil = validUntil;
    this.#rangesDirty = false;
    return this.#rangeSet;
  }

  #add(b: Ban, now: number): void {
    this.#remove(b.key);
    const t = b.target;
    const what = `${t.scope === 'ip' ? 'Ip' : 'Range'} ${targetText(t)}`;
    const detail = `${b.scenario || 'no scenario'} (ban on ${what}${b.origin ? `, origin ${b.origin}` : ''})`;
    const base = { key: b.key, expiresAt: now + b.remainingMs, detail };
    if (t.scope === 'range') {
      const e: Entry = { ...base, slot: t.cidr.text, range: t.cidr };
      push(this.#ranges, e.slot as string, e);
      this.#rangesDirty = true;
      this.#byKey.set(b.key, e);
      return;
    }
    const e: Entry = { ...base, slot: t.ip.family === 4 ? t.ip.words[0]! : formatIpValue(t.ip), range: undefined };
    if (typeof e.slot === 'number') push(this.#v4, e.slot, e);
    else push(this.#v6, e.slot, e);
    this.#byKey.set(b.key, e);
  }

  #remove(key: string): void {
    const e = this.#byKey.get(key);
    if (!e) return;
    this.#byKey.delete(key);
    if (e.range) {
      pull(this.#ranges, e.slot as string, e);
      this.#rangesDirty = true;
    } else if (typeof e.slot === 'number') {
      pull(this.#v4, e.slot, e);
    } else {
      pull(this.#v6, e.slot, e);
    }
  }
}

function live(entries: readonly Entry[] | undefined, now: number): BanMatch | undefined {
  if (!entries) return undefined;
  for (let i = 0; i < entries.length; i++) if (entries[i]!.expiresAt > now) return entries[i];
  return undefined;
}

function push<K>(map: Map<K, Entry[]>, k: K, e: Entry): void {
  const list = map.get(k);
  if (list) list.push(e);
  else map.set(k, [e]);
}

function pull<K>(map: Map<K, Entry[]>, k: K, e: Entry): void {
  const list = map.get(k);
  if (!list) return;
  const i = list.indexOf(e);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) map.delete(k);
}

import type { Family } from '../../core/address.js';
import { SluiceError } from '../../core/errors.js';
import type { RejectReason } from '../../observe/events.js';
import { parseCidr, type Cidr } from './cidr.js';
import { CidrSet } from './cidr-set.js';
import { countryCodeIssue, type CountryLookup } from './country.js';
import { embeddedIpv4, type EmbeddedIpv4 } from './embedded-ipv4.js';
import { formatIpv4, formatIpValue, parseIpValue, type IpValue } from './ip-value.js';

/**
 * How an address the country database cannot place is treated (private, loopback, reserved and
 * unassigned addresses, or networks the database leaves without a country):
 * - `unlisted` (default): its country is in neither list. Only a deny list set: admitted. A
 *   countries.allow list set: not admitted by it (an `acl.allow` network may still admit it).
 * - `deny`: refused, like a country on the deny list (deny wins over `acl.allow` too).
 * - `allow`: admitted by countries.allow, like a country on it (deny rules still apply).
 */
export type UnknownCountryPolicy = 'unlisted' | 'deny' | 'allow';

/** The `acl:` block of a route (or the top-level default) as the config file spells it. */
export interface AclSpec {
  /** Networks admitted; empty or absent = everyone (subject to countries.allow). */
  readonly allow?: readonly string[];
  /** Networks refused; deny wins over every allow. */
  readonly deny?: readonly string[];
  readonly countries?: {
    readonly allow?: readonly string[];
    readonly deny?: readonly string[];
    readonly unknown?: UnknownCountryPolicy;
  };
  /** Record what would be refused, then admit. */
  readonly observeOnly?: boolean;
  /** Also refuse clients banned by CrowdSec (the top-level `crowdsec:` section, docs/crowdsec.md). */
  readonly crowdsec?: boolean;
}

export type AclReason = Extract<RejectReason, 'acl-cidr' | 'acl-country'>;

/**
 * Why a client is (or, in observe-only mode, would be) refused. When `observeOnly` is true the
 * caller must still admit the client, after recording the denial with this reason and detail.
 */
export interface AclDenial {
  readonly reason: AclReason;
  /** For people: which rule refused, e.g. `deny 203.0.113.0/24`, `country CN is in countries.deny`. */
  readonly detail: string;
  readonly observeOnly: boolean;
}

/** A problem in an AclSpec; `path` is relative to the acl block (`allow[2]`, `countries.deny[0]`). */
export interface AclIssue {
  readonly path: string;
  readonly message: string;
}

const UNKNOWN_POLICIES: readonly string[] = ['unlisted', 'deny', 'allow'];

/**
 * Every problem in `spec`, for the config layer to report with its own key prefix and line.
 * `hasGeo` says whether a country database is configured (`geoip.database`).
 */
export function aclSpecIssues(spec: AclSpec, hasGeo: boolean): AclIssue[] {
  const issues: AclIssue[] = [];
  for (const key of ['allow', 'deny'] as const) {
    (spec[key] ?? []).forEach((text, i) => {
      const r = typeof text === 'string' ? parseCidr(text) : 'expected a string such as 203.0.113.0/24';
      if (typeof r === 'string') issues.push({ path: `${key}[${i}]`, message: r });
    });
  }
  const c = spec.countries ?? {};
  for (const key of ['allow', 'deny'] as const) {
    (c[key] ?? []).forEach((code, i) => {
      const m = countryCodeIssue(code);
      if (m) issues.push({ path: `countries.${key}[${i}]`, message: m });
    });
  }
  const denied = new Set(c.deny ?? []);
  (c.allow ?? []).forEach((code, i) => {
    if (denied.has(code)) issues.push({ path: `countries.allow[${i}]`, message: `${code} is in both countries.allow and countries.deny` });
  });
  if (c.unknown !== undefined && !UNKNOWN_POLICIES.includes(c.unknown)) {
    issues.push({ path: 'countries.unknown', message: `expected one of ${UNKNOWN_POLICIES.join(', ')}, got "${String(c.unknown)}"` });
  }
  if (countryRulesActive(c) && !hasGeo) {
    issues.push({ path: 'countries', message: 'country rules need a country database: set geoip.database' });
  }
  return issues;
}

function countryRulesActive(c: NonNullable<AclSpec['countries']>): boolean {
  return (c.allow?.length ?? 0) > 0 || (c.deny?.length ?? 0) > 0 || c.unknown === 'deny';
}

/**
 * Compiles `spec` once (rules parsed to numbers, sorted, lists to sets) into an AclPolicy.
 * Throws SLUICE_ERR_CONFIG_INVALID listing every issue; run `aclSpecIssues` first to report
 * them with positions. `geo` is required when country rules are set.
 */
export function compileAcl(spec: AclSpec, geo?: CountryLookup): AclPolicy {
  const issues = aclSpecIssues(spec, geo !== undefined);
  if (issues.length > 0) {
    throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `acl: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  }
  const cidrs = (list: readonly string[] | undefined) => (list ?? []).map((t) => parseCidr(t) as Cidr);
  const c = spec.countries ?? {};
  const countries: CountryRules | undefined =
    countryRulesActive(c) && geo
      ? { geo, allow: new Set(c.allow ?? []), deny: new Set(c.deny ?? []), unknown: c.unknown ?? 'unlisted' }
      : undefined;
  return new AclPolicy(new CidrSet(cidrs(spec.allow)), new CidrSet(cidrs(spec.deny)), countries, spec.observeOnly ?? false);
}

interface CountryRules {
  readonly geo: CountryLookup;
  readonly allow: ReadonlySet<string>;
  readonly deny: ReadonlySet<string>;
  readonly unknown: UnknownCountryPolicy;
}

/** What the country rules say: refused, admitted by countries.allow, or neither (with why not). */
type CountryVerdict =
  | { readonly kind: 'deny'; readonly detail: string }
  | { readonly kind: 'admit' }
  | { readonly kind: 'none'; readonly detail: string };

const ADMIT: CountryVerdict = { kind: 'admit' };

/**
 * A compiled ACL. Immutable; `check` is synchronous, allocation-light and safe to call from any
 * route sharing the policy. Order: CIDR deny (with embedded-IPv4 widening), country deny, then
 * the allow lists; deny always wins. When `acl.allow` and `countries.allow` are both set, a
 * client admitted by either one is admitted.
 */
export class AclPolicy {
  readonly #allow: CidrSet;
  readonly #deny: CidrSet;
  readonly #countries: CountryRules | undefined;
  readonly #gated: boolean;
  /** True when the policy has no rule at all, so every check admits (callers may skip it). */
  readonly empty: boolean;
  readonly observeOnly: boolean;

  /** Use `compileAcl`, which validates the spec and builds the parts. */
  constructor(allow: CidrSet, deny: CidrSet, countries: CountryRules | undefined, observeOnly: boolean) {
    this.#allow = allow;
    this.#deny = deny;
    this.#countries = countries;
    this.#gated = allow.size > 0 || (countries?.allow.size ?? 0) > 0;
    this.empty = allow.size === 0 && deny.size === 0 && countries === undefined;
    this.observeOnly = observeOnly;
  }

  /**
   * Checks a client address as `canonicalIp` returns it. `family` is accepted so an Endpoint's
   * fields can be passed as they are; the text decides. Text that is not an IP address is
   * refused whenever the policy has any rule (fail closed).
   */
  check(address: string, family?: Family): AclDenial | undefined {
    if (this.empty) return undefined;
    const ip = parseIpValue(address);
    if (!ip) return this.#denial('acl-cidr', `${JSON.stringify(address.slice(0, 64))} is not an IP address`);
    return this.#decide(ip, address);
  }

  /** `check` for an address already parsed with `parseIpValue`. */
  checkValue(ip: IpValue): AclDenial | undefined {
    if (this.empty) return undefined;
    return this.#decide(ip, undefined);
  }

  #decide(ip: IpValue, text: string | undefined): AclDenial | undefined {
    const embedded = embeddedIpv4(ip);
    const hit = this.#deny.match(ip);
    if (hit) return this.#denial('acl-cidr', `deny ${hit.text}`);
    for (const e of embedded) {
      const widened = this.#deny.matchIpv4(e.v4);
      if (widened) return this.#denial('acl-cidr', `deny ${widened.text} (${describe(e)})`);
    }
    const country = this.#countries ? countryVerdict(this.#countries, ip, text, embedded) : undefined;
    if (country?.kind === 'deny') return this.#denial('acl-country', country.detail);
    if (!this.#gated) return undefined;
    if (this.#allow.size > 0 && this.#allow.match(ip)) return undefined;
    const cidrPart = this.#allow.size > 0 ? 'not in acl.allow' : '';
    if (!this.#countries || this.#countries.allow.size === 0 || !country) return this.#denial('acl-cidr', cidrPart);
    if (country.kind === 'admit') return undefined;
    return this.#denial('acl-country', cidrPart ? `${cidrPart}; ${country.detail}` : country.detail);
  }

  #denial(reason: AclReason, detail: string): AclDenial {
    return { reason, detail, observeOnly: this.observeOnly };
  }
}

function describe(e: EmbeddedIpv4): string {
  return `${e.form} address embeds ${formatIpv4(e.v4)}`;
}

function countryVerdict(c: CountryRules, ip: IpValue, text: string | undefined, embedded: readonly EmbeddedIpv4[]): CountryVerdict {
  if (embedded.length === 0) {
    const code = c.geo.country(text ?? formatIpValue(ip));
    if (code === undefined) return unknownVerdict(c, 'country unknown');
    if (c.deny.has(code)) return { kind: 'deny', detail: `country ${code} is in countries.deny` };
    if (c.allow.has(code)) return ADMIT;
    return { kind: 'none', detail: `country ${code} is not in countries.allow` };
  }
  // These ranges are special-purpose: any country a database gives for the IPv6 address is the
  // embedded IPv4's (MaxMind aliases ::/96 and 2002::/16 to the IPv4 tree), so the IPv6 address
  // itself is never looked up. The embedded countries may refuse the client but never admit it:
  // an IPv6 source must not borrow an allowed country.
  let known: string | undefined;
  for (const e of embedded) {
    const code = c.geo.country(formatIpv4(e.v4));
    if (code === undefined) continue;
    if (c.deny.has(code)) return { kind: 'deny', detail: `country ${code} is in countries.deny (${describe(e)})` };
    known ??= `country ${code} (${describe(e)}) cannot satisfy countries.allow`;
  }
  if (known === undefined) return unknownVerdict(c, `country unknown (${describe(embedded[0]!)})`);
  return { kind: 'none', detail: known };
}

function unknownVerdict(c: CountryRules, what: string): CountryVerdict {
  if (c.unknown === 'deny') return { kind: 'deny', detail: `${what} and countries.unknown is deny` };
  if (c.unknown === 'allow') return ADMIT;
  return { kind: 'none', detail: `${what}, so not in countries.allow` };
}

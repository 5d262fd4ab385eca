import type { Family } from '../../core/address.js';
import { SluiceError } from '../../core/errors.js';
import type { RejectReason } from '../../core/reasons.js';
import { parseCidr, type Cidr } from '../../core/cidr.js';
import { CidrSet } from '../../core/cidr-set.js';
import type { CountryLookup } from './country.js';
import { aclSpecIssues, countryRulesActive, type AclSpec, type UnknownCountryPolicy } from '../../core/acl-spec.js';
import { embeddedIpv4, type EmbeddedIpv4 } from '../../core/embedded-ipv4.js';
import { formatIpv4, formatIpValue, parseIpValue, type IpValue } from '../../core/ip-value.js';

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

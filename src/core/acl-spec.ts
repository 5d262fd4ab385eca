import { parseCidr } from './cidr.js';

/*
 * The `acl:` vocabulary shared by the config layer (which validates it with positions) and
 * admission/acl/acl-policy.ts (which compiles it).
 */

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

/** True when the country rules can refuse or admit anyone (a database is needed then). */
export function countryRulesActive(c: NonNullable<AclSpec['countries']>): boolean {
  return (c.allow?.length ?? 0) > 0 || (c.deny?.length ?? 0) > 0 || c.unknown === 'deny';
}

const COUNTRY_CODE = /^[A-Z]{2}$/;

/** True for an ISO 3166-1 alpha-2 code as the ACL spells it (two uppercase letters). */
export function isCountryCode(code: unknown): code is string {
  return typeof code === 'string' && COUNTRY_CODE.test(code);
}

/** A message for people when `code` is not two uppercase letters, otherwise undefined. */
export function countryCodeIssue(code: unknown): string | undefined {
  if (isCountryCode(code)) return undefined;
  const shown = typeof code === 'string' ? `"${code}"` : String(code);
  return `country codes are two uppercase letters (ISO 3166-1 alpha-2, e.g. DE, NL), got ${shown}`;
}

/**
 * How many leading bits of a client address make one "source" for per-source caps and rates
 * (`sourcePrefix`, docs/configuration.md). IPv6 defaults to /64 because that is what one customer
 * gets (RFC 6177): keyed on the full /128, one subscriber walks around every per-source limit by
 * changing its interface identifier.
 */
export interface SourcePrefix {
  readonly ipv4: number;
  readonly ipv6: number;
}

export const DEFAULT_SOURCE_PREFIX: SourcePrefix = Object.freeze({ ipv4: 32, ipv6: 64 });

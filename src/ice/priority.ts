import type { CandidateType } from './candidate.js';

/**
 * Candidate and pair priorities (RFC 8445 §5.1.2, §6.1.2.3). Type preferences follow the RFC's
 * recommendation, so direct paths (host, peer-reflexive, server-reflexive) always outrank relayed
 * ones, which is the order Sluice wants too: a relay is the fallback.
 */

export const TYPE_PREFERENCE: Readonly<Record<CandidateType, number>> = { host: 126, prflx: 110, srflx: 100, relay: 0 };

/** 2^24·type + 2^8·local + (256 − component). `localPreference` is 0-65535 (higher wins). */
export function candidatePriority(type: CandidateType, localPreference = 65535, component = 1): number {
  return TYPE_PREFERENCE[type] * 2 ** 24 + localPreference * 2 ** 8 + (256 - component);
}

/**
 * 2^32·min(G,D) + 2·max(G,D) + (G>D ? 1 : 0), where G is the controlling agent's candidate
 * priority and D the controlled one's. Up to 2^63: a bigint, because a number would round.
 */
export function pairPriority(controlling: number, controlled: number): bigint {
  const g = BigInt(controlling);
  const d = BigInt(controlled);
  const min = g < d ? g : d;
  const max = g < d ? d : g;
  return (min << 32n) + 2n * max + (g > d ? 1n : 0n);
}

import type { CandidatePair } from './checklist.js';

/**
 * When the controlling agent nominates, and which pair (regular nomination, RFC 8445 §8.1.1):
 * the best valid pair, once no pair that could beat it is still being checked, or after a grace
 * period. The grace period is long for relayed pairs (default 2 s) so a direct path that is
 * still punching its way through a NAT gets the chance to win; peer-to-peer is preferred over
 * relayed, as in NetBird. Pure: the agent calls it again at `retryAt` or when a check ends.
 */

export interface NominationTiming {
  /** Grace for a direct (host, srflx, prflx) best pair while better pairs are still pending. */
  readonly directDelayMs: number;
  /** Grace for a relayed best pair while better pairs are still pending. */
  readonly relayDelayMs: number;
}

export const DEFAULT_NOMINATION_TIMING: NominationTiming = Object.freeze({ directDelayMs: 250, relayDelayMs: 2000 });

export type NominationDecision =
  | { readonly kind: 'nominate'; readonly pair: CandidatePair }
  | { readonly kind: 'wait'; readonly retryAt: number }
  | { readonly kind: 'none' };

export function isRelayed(p: CandidatePair): boolean {
  return p.base.kind === 'relay' || p.remote.type === 'relay';
}

/** `pairs` in check-list order (highest priority first). */
export function decideNomination(pairs: readonly CandidatePair[], now: number, timing: NominationTiming): NominationDecision {
  const best = pairs.find((p) => p.state === 'succeeded');
  if (!best || best.validAt === undefined) return { kind: 'none' };
  const better = pairs.some((p) => p.priority > best.priority && p.state !== 'succeeded' && p.state !== 'failed');
  if (!better) return { kind: 'nominate', pair: best };
  const at = best.validAt + (isRelayed(best) ? timing.relayDelayMs : timing.directDelayMs);
  return now >= at ? { kind: 'nominate', pair: best } : { kind: 'wait', retryAt: at };
}

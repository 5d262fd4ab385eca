import type { Clock } from '../../core/clock.js';
import type { HeldDecision } from './decision-store.js';
import { targetText } from './stream-body.js';

/**
 * A CrowdSec decision as the ban list shows it (GET /api/bans, /api/sources): the fields of a
 * ban-list ban (`target`, `source`, `reason`, `createdAt`, `expiresAt`) plus what only a decision
 * has. Sluice enforces these but does not own them: they are lifted with `cscli decisions delete`.
 */
export interface CrowdsecBanView {
  readonly target: string;
  readonly source: 'crowdsec';
  readonly scope: 'ip' | 'range';
  /** The scenario and origin, as in refusal details: `crowdsecurity/ssh-bf (origin crowdsec)`. */
  readonly reason: string;
  readonly scenario: string;
  readonly origin: string;
  /** The LAPI's decision id, when it sent a numeric one; null otherwise. */
  readonly decisionId: number | null;
  /** When Sluice received the decision (the decision stream carries no creation time), ISO 8601. */
  readonly createdAt: string;
  /** ISO 8601, or null for a decision without a duration (it lasts until the LAPI deletes it). */
  readonly expiresAt: string | null;
}

/** Turns a held decision (monotonic times) into its view (wall-clock times), at monotonic `now`. */
export function crowdsecBanView(d: HeldDecision, clock: Pick<Clock, 'now' | 'wallNow'>, now: number): CrowdsecBanView {
  const b = d.ban;
  const wall = clock.wallNow() - now;
  const id = /^#(\d+)$/.exec(b.key);
  return {
    target: targetText(b.target),
    source: 'crowdsec',
    scope: b.target.scope,
    reason: `${b.scenario || 'no scenario'}${b.origin ? ` (origin ${b.origin})` : ''}`,
    scenario: b.scenario,
    origin: b.origin,
    decisionId: id ? Number(id[1]) : null,
    createdAt: new Date(wall + d.addedAt).toISOString(),
    expiresAt: Number.isFinite(d.expiresAt) ? new Date(wall + d.expiresAt).toISOString() : null,
  };
}

/** The command that lifts this decision on the CrowdSec side. */
export function cscliDelete(v: CrowdsecBanView): string {
  return v.decisionId !== null ? `cscli decisions delete --id ${v.decisionId}` : `cscli decisions delete --${v.scope} ${v.target}`;
}

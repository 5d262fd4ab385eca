import { z } from 'zod';

/**
 * `gateway.datagramBudget` and `agent.datagramBudget` (docs/expose.md, "Fairness under a
 * flood"): the datagrams per second one tunnel direction may carry (at the gateway: toward each
 * agent, every agent its own; at the agent: toward the gateway and its peers), shared fairly among
 * the sessions that use it. 0 turns the budget off.
 */
export const DEFAULT_DATAGRAM_BUDGET = 100_000;

export interface DatagramBudgetSettings {
  readonly perSecond: number;
}

export const datagramBudgetSchema = z
  .strictObject({ perSecond: z.number().int().min(0).max(100_000_000).default(DEFAULT_DATAGRAM_BUDGET) })
  .prefault({});

import type { Endpoint, Transport } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { EventStream, FlowRef, RejectReason, VerdictReason } from '../observe/events.js';

/** Why a client is (or, in observe-only mode, would be) refused. */
export interface AdmitVerdict {
  readonly reason: VerdictReason;
  /** For people: which rule decided. */
  readonly detail?: string;
  /** True: record the would-be refusal, then admit. */
  readonly observeOnly?: boolean;
}

/**
 * An admission step that runs before caps and rates, once per new session or connection, with
 * the canonical client address (ACL, country, threat intel). Returns a verdict, or undefined to
 * admit. Must be synchronous and cheap: it runs on the accept path, and again over every live
 * session when verdict inputs change (admission/reverdict.ts).
 */
export type Admitter = (client: Endpoint, route: string) => AdmitVerdict | undefined;

/** Runs steps in order; the first refusal that is not observe-only wins, observe-only ones are reported through `observed`. */
export function chainAdmitters(steps: readonly Admitter[]): Admitter | undefined {
  if (steps.length === 0) return undefined;
  if (steps.length === 1) return steps[0];
  return (client, route) => {
    let observed: AdmitVerdict | undefined;
    for (const step of steps) {
      const v = step(client, route);
      if (!v) continue;
      if (!v.observeOnly) return v;
      observed ??= v;
    }
    return observed;
  };
}

/** What a listener needs to report a verdict. */
export interface VerdictReporter {
  rejected(client: Endpoint, verdict: AdmitVerdict): void;
  /** An observe-only verdict about a live session (admission/reverdict.ts). */
  wouldEnd(flow: FlowRef, verdict: AdmitVerdict): void;
}

/** Reports verdicts as `session-rejected` (and `session-would-end`) events of the route `routeName()` names now. */
export function eventReporter(events: EventStream, clock: Clock, routeName: () => string, proto: Transport): VerdictReporter {
  return {
    rejected: (client, v) =>
      events.emit({
        type: 'session-rejected',
        at: clock.wallNow(),
        route: routeName(),
        proto,
        client,
        reason: v.reason,
        detail: v.detail,
        observeOnly: v.observeOnly,
      }),
    wouldEnd: (flow, v) => events.emit({ type: 'session-would-end', at: clock.wallNow(), flow, reason: v.reason, ...(v.detail ? { detail: v.detail } : {}) }),
  };
}

/**
 * Runs `admit` for a new client and reports any verdict. Returns the reason to refuse, or
 * undefined to go on (an observe-only verdict is reported and then admitted).
 */
export function applyAdmitter(admit: Admitter | undefined, client: Endpoint, route: string, report: VerdictReporter): RejectReason | undefined {
  const v = admit?.(client, route);
  if (!v) return undefined;
  report.rejected(client, v);
  return v.observeOnly ? undefined : v.reason;
}

import type { Clock } from '../core/clock.js';
import type { Endpoint } from '../core/address.js';
import type { EventStream, VerdictCause } from '../observe/events.js';
import type { AdmitVerdict, Admitter } from './admitter.js';

/** What one pass over live sessions found. */
export interface ReverdictCount {
  /** Live sessions whose client was judged again. */
  checked: number;
  /** Ended because the verdict now refuses them. */
  ended: number;
  /** Kept because the refusal is observe-only; recorded (once per session). */
  wouldEnd: number;
}

/**
 * A holder of live sessions admitted by an Admitter (a TCP route's connections, a UDP route's
 * session table). `reverdict` runs the holder's current admitter over each live session's client,
 * synchronously, and ends those it now refuses with the verdict's reason, or records a would-end
 * for an observe-only refusal.
 */
export interface Reverdictable {
  reverdict(): ReverdictCount;
}

/** A session as `rejudge` needs it: its client, and whether a would-end was already recorded. */
export interface JudgedFlow {
  readonly client: Endpoint;
  wouldEndNoted: boolean;
}

/**
 * Judges `flows` again with `admit` (for route `route`). Calls `end` for each refused flow and
 * `wouldEnd` the first time an observe-only verdict concerns a flow. `flows` may be a live view:
 * it is copied first, since `end` removes flows from it.
 */
export function rejudge<F extends JudgedFlow>(
  flows: Iterable<F>,
  admit: Admitter | undefined,
  route: string,
  end: (f: F, v: AdmitVerdict) => void,
  wouldEnd: (f: F, v: AdmitVerdict) => void,
): ReverdictCount {
  const n: ReverdictCount = { checked: 0, ended: 0, wouldEnd: 0 };
  if (admit === undefined) return n;
  for (const f of [...flows]) {
    n.checked++;
    const v = admit(f.client, route);
    if (v === undefined) continue;
    if (!v.observeOnly) {
      n.ended++;
      end(f, v);
    } else if (!f.wouldEndNoted) {
      f.wouldEndNoted = true;
      n.wouldEnd++;
      wouldEnd(f, v);
    }
  }
  return n;
}

/**
 * The one place where the inputs of admission verdicts announce a change: a config reload (new
 * ACLs, a new country database), a CrowdSec decision pull that added bans or changed the list's
 * state, and any later source of bans. Holders of live sessions are registered with `watch`;
 * `changed` re-judges all of them at once, synchronously, and reports the totals as one
 * `verdicts-reapplied` event. Admitters are synchronous and answer from memory, so a pass costs
 * one lookup per live session.
 */
export class VerdictChanges {
  readonly #sources = new Set<() => Iterable<Reverdictable>>();
  #passes = 0;

  constructor(
    private readonly events: EventStream,
    private readonly clock: Clock,
  ) {}

  /** Registers a live set of holders (read at each change); returns the way to unregister it. */
  watch(holders: () => Iterable<Reverdictable>): () => void {
    this.#sources.add(holders);
    return () => this.#sources.delete(holders);
  }

  /**
   * Verdict inputs changed because of `cause` (`reload`, `crowdsec`, ...): re-judges every live
   * session now. Holders must not throw.
   */
  changed(cause: VerdictCause): ReverdictCount {
    const total: ReverdictCount = { checked: 0, ended: 0, wouldEnd: 0 };
    this.#passes++;
    try {
      for (const source of [...this.#sources]) {
        for (const h of source()) {
          const n = h.reverdict();
          total.checked += n.checked;
          total.ended += n.ended;
          total.wouldEnd += n.wouldEnd;
        }
      }
    } finally {
      this.#passes--;
    }
    this.events.emit({ type: 'verdicts-reapplied', at: this.clock.wallNow(), cause, ...total });
    return total;
  }

  /**
   * `step` for new sessions only: while a pass over live sessions runs it admits. For steps that
   * limit how sessions start (fleet-wide rates and caps), which must never end live ones.
   */
  forNewFlows(step: Admitter): Admitter {
    return (client, route) => (this.#passes > 0 ? undefined : step(client, route));
  }
}

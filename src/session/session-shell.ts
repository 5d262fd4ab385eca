import type { Endpoint, Transport } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { isSluiceError } from '../core/errors.js';
import type { DropReason, EndReason, EventStream, FlowCounters, FlowRef, RejectReason } from '../observe/events.js';
import { AdmissionLimits } from '../admission/limits.js';
import { applyAdmitter, eventReporter, type Admitter, type VerdictReporter } from '../admission/admitter.js';
import { bandwidthLimiterFor, type BandwidthLimiter, type BucketPair, type FlowGates } from '../admission/bandwidth-limiter.js';
import { rejudge, type JudgedFlow, type ReverdictCount } from '../admission/reverdict.js';
import type { SessionPolicy } from './session-policy.js';

/** A session as the shell sees it, whatever carries its bytes. */
export interface ShellFlow extends FlowRef, JudgedFlow {
  /** Monotonic time the client was accepted. */
  readonly startedAt: number;
  /** Wall time the client was accepted, for records. */
  readonly startedWall: number;
  /** The per-source key admission counted it under (AdmissionLimits.keyOf). */
  readonly source: string;
  readonly upstream: Endpoint | undefined;
}

/**
 * The protocol side behind the shell (TCP connections, the UDP session table): its live flows and
 * how one ends. The side owns its flows; the shell only counts, reports and asks.
 */
export interface SessionSide<F extends ShellFlow> {
  /** Live flows, admitted and not yet released. */
  readonly size: number;
  flows(): Iterable<F>;
  /** Admitted but not started (no upstream yet): a verdict on it is reported as a refusal. */
  opening(flow: F): boolean;
  /** Ends a flow from outside (a verdict, shutdown); idempotent; `detail` names the rule. */
  end(flow: F, reason: EndReason, detail?: string): void;
}

export interface ShellDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly admit?: Admitter;
  /** Bandwidth buckets shared with other listeners (an agent's total on the gateway); absent = none. */
  readonly sharedBandwidth?: BucketPair;
  /** Caps, rates and bandwidth shared by several listeners of one route (a port range); their owner updates them. */
  readonly pooled?: PooledLimits;
}

/** One route's limits across its listeners (listen/range-route.ts). */
export interface PooledLimits {
  readonly limits: AdmissionLimits;
  readonly bandwidth: BandwidthLimiter | null;
}

/**
 * What every session of a listener goes through, TCP or UDP: admission (draining, the admitter,
 * caps and rates), bandwidth gates, the session-rejected / session-started / dial-ok / dial-error
 * / session-ended events, re-judging live sessions, settings updates, graceful drain and
 * immediate close. Nothing here runs per packet.
 *
 * Contract with the side: a flow counted by `admit` is released exactly once with `released`
 * (which also resolves `drain` once the side is empty), and the side removes it from its live
 * set before calling `released`.
 */
export class SessionShell<P extends SessionPolicy, F extends ShellFlow> {
  /** Caps and rates; the UDP side asks it directly for refunds and the soft route cap. */
  readonly limits: AdmissionLimits;
  #policy: P;
  #admit: Admitter | undefined;
  #bandwidth: BandwidthLimiter | null;
  readonly #reporter: VerdictReporter;
  readonly #abort = new AbortController();
  #draining = false;
  #onEmpty: (() => void)[] = [];

  /** Built by the side, in its constructor, with itself as `side`. */
  constructor(
    policy: P,
    readonly proto: Transport,
    private readonly deps: ShellDeps,
    private readonly side: SessionSide<F>,
  ) {
    this.#policy = policy;
    this.#admit = deps.admit;
    this.limits = deps.pooled?.limits ?? new AdmissionLimits(policy.limits, deps.clock);
    this.#bandwidth = deps.pooled ? null : bandwidthLimiterFor(policy.bandwidth, deps.clock, deps.sharedBandwidth);
    this.#reporter = eventReporter(deps.events, deps.clock, () => this.#policy.name, proto);
  }

  get policy(): P {
    return this.#policy;
  }

  /** Aborted by `close`: dials in flight give up. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** New settings for the same listener: new sessions use them. */
  update(policy: P, admit: Admitter | undefined): void {
    this.#policy = policy;
    this.#admit = admit;
    if (this.deps.pooled) return;
    this.limits.update(policy.limits);
    const shared = this.deps.sharedBandwidth;
    if (this.#bandwidth === null) this.#bandwidth = bandwidthLimiterFor(policy.bandwidth, this.deps.clock, shared);
    else if (policy.bandwidth === undefined && shared === undefined) this.#bandwidth = null;
    else this.#bandwidth.update(policy.bandwidth ?? {});
  }

  /**
   * Admits a new client: refused while draining, by the admitter, or by caps and rates (each
   * refusal reported once). `limitStep` replaces the plain caps-and-rates check where the side
   * can make room (UDP: quiet exchanges, evict-lru). Returns the source key, already counted.
   */
  admit(client: Endpoint, limitStep?: (source: string) => RejectReason | undefined): string | undefined {
    if (this.#draining) return this.rejected(client, 'draining');
    if (applyAdmitter(this.#admit, client, this.#policy.name, this.#reporter) !== undefined) return undefined;
    const source = this.limits.keyOf(client);
    const limited = limitStep ? limitStep(source) : this.limits.admit(source);
    if (limited) return this.rejected(client, limited, source === client.address ? undefined : `source ${source}`);
    this.limits.acquire(source);
    return source;
  }

  /** Reports a client refused before it became a session. */
  rejected(client: Endpoint, reason: RejectReason, detail?: string): undefined {
    const { clock, events } = this.deps;
    events.emit({ type: 'session-rejected', at: clock.wallNow(), route: this.#policy.name, proto: this.proto, client, reason, ...(detail ? { detail } : {}) });
    return undefined;
  }

  /** Whether a bandwidth limit paces new flows (their bytes must pass through JavaScript). */
  get paced(): boolean {
    return this.#bandwidth !== null;
  }

  /** The bandwidth gates of a new flow of `source`; undefined when nothing limits it. */
  gatesFor(source: string): FlowGates | undefined {
    const bw = this.deps.pooled ? this.deps.pooled.bandwidth : this.#bandwidth;
    return bw === null ? undefined : bw.gatesFor(source);
  }

  /** The upstream answered: `session-started` then `dial-ok` (latency since `dialedAt`, monotonic). */
  started(flow: F, upstream: Endpoint, dialedAt: number): void {
    const { clock, events } = this.deps;
    // Per-session events are built only when a sink reads them (no access log, metrics or ban rule: none).
    const started = events.wants('session-started');
    const dialOk = events.wants('dial-ok');
    if (!started && !dialOk) return;
    const at = clock.wallNow(); // one reading for both events: they happen at the same moment
    if (started) events.emit({ type: 'session-started', at, flow, upstream, startedAt: flow.startedWall });
    if (dialOk) events.emit({ type: 'dial-ok', at, flow, latencyMs: clock.now() - dialedAt });
  }

  /** The dial failed: reports `dial-error` and returns the reason the flow ends with. */
  dialFailed(flow: F, err: Error & { code?: string }, dialedAt: number): EndReason {
    const { clock, events } = this.deps;
    if (isSluiceError(err, 'SLUICE_ERR_NO_HEALTHY_UPSTREAM')) {
      // A pool with no member taking sessions: a refusal of the client (counted by reason), not a failed dial.
      events.emit({ type: 'session-rejected', at: clock.wallNow(), route: flow.route, proto: this.proto, client: flow.client, reason: 'no-healthy-upstream' });
      return 'no-healthy-upstream';
    }
    const up = this.#policy.upstream;
    events.emit({ type: 'dial-error', at: clock.wallNow(), flow, upstream: `${up.host}:${up.port}`, code: err.code ?? 'ERROR', message: err.message, latencyMs: clock.now() - dialedAt });
    return isSluiceError(err, 'SLUICE_ERR_PEER_OFFLINE') ? 'peer-offline' : 'upstream-unreachable';
  }

  /** A started flow ended: `session-ended` with its counters (and what its channel dropped by itself). */
  ended(flow: F, reason: EndReason, counters: FlowCounters, detail?: string, dropped?: Partial<Record<DropReason, number>>): void {
    const { clock } = this.deps;
    if (!this.deps.events.wants('session-ended')) return;
    this.deps.events.emit({
      type: 'session-ended',
      at: clock.wallNow(),
      flow,
      upstream: flow.upstream,
      startedAt: flow.startedWall,
      durationMs: Math.max(0, Math.round(clock.now() - flow.startedAt)),
      reason,
      counters,
      ...(detail ? { detail } : {}),
      ...(dropped ? { dropped } : {}),
    });
  }

  /** A flow counted by `admit` is gone (already out of the side's live set). */
  released(source: string): void {
    this.limits.release(source);
    if (this.side.size === 0) for (const done of this.#onEmpty.splice(0)) done();
  }

  /** Judges every live flow again with the current admitter (admission/reverdict.ts). */
  reverdict(): ReverdictCount {
    const side = this.side;
    const r = this.#reporter;
    return rejudge(
      side.flows(),
      this.#admit,
      this.#policy.name,
      (f, v) => {
        if (side.opening(f)) r.rejected(f.client, v);
        side.end(f, v.reason, v.detail);
      },
      (f, v) => r.wouldEnd(f, v),
    );
  }

  /** Refuses new clients from now on; resolves once the last flow is released. */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.side.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onEmpty.push(resolve));
  }

  /** Aborts dials in flight and ends every flow with `reason`. Idempotent. */
  close(reason: EndReason): void {
    this.#draining = true;
    this.#abort.abort();
    const side = this.side;
    for (const f of [...side.flows()]) side.end(f, reason);
  }
}

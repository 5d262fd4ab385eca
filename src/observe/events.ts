import type { Endpoint, Transport } from '../core/address.js';
import type { RouteOrigin } from '../config/types.js';

/** Traffic of one flow so far. "from client" is what the client sent towards the upstream. */
export interface FlowCounters {
  bytesFromClient: number;
  packetsFromClient: number;
  bytesToClient: number;
  packetsToClient: number;
}

/** Why a session or connection ended. Stable strings: logs, metrics and the API carry them. */
export type EndReason =
  | 'idle-timeout'
  | 'client-closed'
  | 'upstream-closed'
  | 'client-error'
  | 'upstream-error'
  | 'upstream-unreachable'
  /** A connect listener's peer agent is not connected to the gateway. */
  | 'peer-offline'
  | 'evicted'
  | 'route-removed'
  | 'shutdown'
  | 'drain-deadline'
  /** A live session whose client a changed verdict now refuses (docs/access-control.md, "Live sessions"). */
  | VerdictReason;

/** Why an admission step (ACL, CrowdSec) refuses a client: new ones are rejected, live ones end with it. */
export type VerdictReason = 'acl-cidr' | 'acl-country' | 'crowdsec' | 'banned';

/** What changed the inputs of admission verdicts (a metric label: a closed set; ban sources add theirs). */
export type VerdictCause = 'reload' | 'crowdsec' | 'bans';

/** One entry of the ban list (admission/bans/, docs/bans.md), as events, the API and the state file carry it. */
export interface BanInfo {
  /** The banned address or network in canonical text (`203.0.113.7`, `2001:db8:1:2::/64`). */
  readonly target: string;
  /** Who banned it: `rule:<name>`, `api` or `crowdsec`. */
  readonly source: string;
  readonly reason: string;
  /** Wall-clock milliseconds when it was added and when it ends. */
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** Why a new session or connection was refused before any upstream resource was spent. */
export type RejectReason =
  | 'limit-route-sessions'
  | 'limit-source-sessions'
  | 'limit-route-rate'
  | 'limit-source-rate'
  | 'draining'
  | VerdictReason
  | 'proxy-header-missing'
  | 'proxy-header-invalid'
  | 'proxy-header-untrusted';

/** Why single datagrams were dropped (counted in batches, never one event per datagram). */
export type DropReason =
  | 'too-big'
  | 'setup-queue-full'
  | 'send-error'
  | 'no-session'
  | 'proxy-header-untrusted'
  | 'proxy-header-missing'
  | 'proxy-header-invalid'
  /** A reply over the session's reply budget (udp.replyBudget). */
  | 'reply-budget'
  /** Over a route's bandwidth limit (admission/bandwidth-limiter.ts). */
  | 'bandwidth'
  /** Over the tunnel's send budget of the agent (docs/expose.md, "Fairness under a flood"). */
  | 'agent-budget'
  /** Over the session's fair share of that budget while others wanted theirs. */
  | 'session-share';

export interface FlowRef {
  /** Local flow number, unique within this process. */
  readonly id: number;
  readonly route: string;
  readonly proto: Transport;
  readonly client: Endpoint;
  /** Set for routes discovered from container labels. */
  readonly origin?: RouteOrigin;
}

export type SluiceEvent =
  | { type: 'session-started'; at: number; flow: FlowRef; upstream: Endpoint; /** Wall time the client was accepted (before the dial). */ startedAt: number }
  | {
      type: 'session-ended';
      at: number;
      flow: FlowRef;
      upstream: Endpoint | undefined;
      startedAt: number;
      durationMs: number;
      reason: EndReason;
      counters: FlowCounters;
      /** Which rule ended it, for a verdict reason. */
      detail?: string;
      /** Datagrams of this session the tunnel's send budget dropped, by reason (absent when none). */
      dropped?: Partial<Record<DropReason, number>>;
    }
  /** An observe-only verdict would end this live session; it goes on (recorded once per session). */
  | { type: 'session-would-end'; at: number; flow: FlowRef; reason: VerdictReason; detail?: string }
  /** Verdict inputs changed (`cause`) and live sessions were checked again; counts over every route. */
  | { type: 'verdicts-reapplied'; at: number; cause: VerdictCause; checked: number; ended: number; wouldEnd: number }
  | { type: 'session-rejected'; at: number; route: string; proto: Transport; client: Endpoint; reason: RejectReason; detail?: string; observeOnly?: boolean }
  /**
   * A gateway refused an agent's authentication (`wrong-token`, `unknown-agent`, or `rate-limited`
   * while its address backs off), from `client`. Ban rules count it as a rejection.
   */
  | { type: 'auth-failed'; at: number; client: Endpoint; agent?: string; failure: 'wrong-token' | 'unknown-agent' | 'rate-limited' }
  /** A ban was added to the list, or (`observeOnly`, a rule in observe mode) would have been. */
  | { type: 'ban-added'; at: number; ban: BanInfo; observeOnly?: boolean }
  /** A ban left the list: `expired`, or `removed` through the API. */
  | { type: 'ban-removed'; at: number; ban: BanInfo; why: 'expired' | 'removed' }
  | { type: 'dial-error'; at: number; flow: FlowRef; upstream: string; code: string; message: string; latencyMs: number }
  | { type: 'dial-ok'; at: number; flow: FlowRef; latencyMs: number }
  | { type: 'datagrams-dropped'; at: number; route: string; reason: DropReason; count: number }
  | { type: 'route-up'; at: number; route: string; listen: string; address: Endpoint; /** Set for routes from container labels. */ origin?: RouteOrigin }
  | { type: 'route-down'; at: number; route: string; listen: string; /** The address it was bound to (the real port when `listen` said 0). */ address: Endpoint }
  | { type: 'config-reloaded'; at: number; added: string[]; removed: string[]; changed: string[]; rebuilt: string[] }
  | { type: 'config-rejected'; at: number; problems: string[] }
  /** A peer link of `agent.connect` / `expose.peers` changed state or path (docs/connect.md). */
  | { type: 'peer-path'; at: number; peer: string; /** `peer-offline`: the gateway says the peer agent is not connected to it. */ state: 'idle' | 'connecting' | 'connected' | 'peer-offline'; path: 'direct' | 'relayed'; reason: string | undefined };

export type EventType = SluiceEvent['type'];
export type Sink = (event: SluiceEvent) => void;

/**
 * The one event stream. Sessions and listeners publish; the access log, metrics, flow records
 * and the admin API subscribe. Delivery is synchronous and in order, so sinks must be cheap and
 * buffer their own I/O. A sink that throws is detached and reported, never allowed to break the
 * data path.
 */
export class EventStream {
  #sinks: Sink[] = [];
  #onSinkError: (err: unknown) => void;

  constructor(onSinkError: (err: unknown) => void = () => {}) {
    this.#onSinkError = onSinkError;
  }

  subscribe(sink: Sink): () => void {
    this.#sinks = [...this.#sinks, sink];
    return () => {
      this.#sinks = this.#sinks.filter((s) => s !== sink);
    };
  }

  get hasSubscribers(): boolean {
    return this.#sinks.length > 0;
  }

  emit(event: SluiceEvent): void {
    const sinks = this.#sinks;
    for (let i = 0; i < sinks.length; i++) {
      try {
        sinks[i]!(event);
      } catch (err) {
        this.#sinks = this.#sinks.filter((s) => s !== sinks[i]);
        this.#onSinkError(err);
      }
    }
  }
}

export function zeroCounters(): FlowCounters {
  return { bytesFromClient: 0, packetsFromClient: 0, bytesToClient: 0, packetsToClient: 0 };
}

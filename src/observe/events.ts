import type { Endpoint, Transport } from '../core/address.js';
import type { RouteOrigin } from '../core/route-origin.js';
import type { DropReason, EndReason, RejectReason, VerdictCause, VerdictReason } from '../core/reasons.js';

export type { DropReason, EndReason, RejectReason, VerdictCause, VerdictReason };

/** Traffic of one flow so far. "from client" is what the client sent towards the upstream. */
export interface FlowCounters {
  bytesFromClient: number;
  packetsFromClient: number;
  bytesToClient: number;
  packetsToClient: number;
}

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

export interface FlowRef {
  /** Local flow number, unique within this process. */
  readonly id: number;
  readonly route: string;
  readonly proto: Transport;
  readonly client: Endpoint;
  /** Set for routes discovered from container labels. */
  readonly origin?: RouteOrigin;
  /** The port the client reached, on a route whose `listen` is a port range; absent otherwise. */
  readonly listenPort?: number;
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
  /**
   * A UDP client got a socket of its own (`isolated`, reason `over-rate`), gave it back
   * (`released`: `calm`, `session-ended`, `route-closed`), or could not get one (`failed`, the
   * system error's code): docs/expose.md, "A flooding client's own socket".
   */
  | { type: 'udp-isolation'; at: number; route: string; client: Endpoint; change: 'isolated' | 'released' | 'failed'; reason: string }
  | { type: 'route-up'; at: number; route: string; listen: string; address: Endpoint; /** Set for routes from container labels. */ origin?: RouteOrigin }
  | { type: 'route-down'; at: number; route: string; listen: string; /** The address it was bound to (the real port when `listen` said 0). */ address: Endpoint }
  | { type: 'config-reloaded'; at: number; added: string[]; removed: string[]; changed: string[]; rebuilt: string[] }
  | { type: 'config-rejected'; at: number; problems: string[] }
  /** A peer link of `agent.connect` / `expose.peers` changed state or path (docs/connect.md). */
  | { type: 'peer-path'; at: number; peer: string; /** `peer-offline`: the gateway says the peer agent is not connected to it. */ state: 'idle' | 'connecting' | 'connected' | 'peer-offline'; path: 'direct' | 'relayed'; reason: string | undefined }
  /** A pool member changed health state (docs/pools.md); `member` is its label, `cause` what moved it. */
  | { type: 'pool-member'; at: number; route: string; member: string; from: string; to: string; cause: string }
  | ExposureEvent;

// --- Reports of the gateway and the agent (docs/expose.md) -------------------------------------
// Each is one line of the process log (ops/exposure-log.ts). Codes are the protocol's refusal
// codes and the connection's failure names, kept as plain strings at this layer.

export type ExposureEvent =
  | { type: 'gateway-started'; at: number; tcp: Endpoint; udp: Endpoint; fingerprint: string; /** True on the start that generated the certificate. */ generated: boolean; certPath: string }
  | { type: 'gateway-auth-refused'; at: number; remote: Endpoint; agent: string | undefined; failure: string; message: string }
  | { type: 'gateway-agent-up'; at: number; agent: string; remote: Endpoint; resumed: boolean; keyId: number }
  | { type: 'gateway-agent-down'; at: number; agent: string; reason: string }
  | { type: 'gateway-agent-gone'; at: number; agent: string; reason: string }
  | { type: 'gateway-published'; at: number; agent: string; service: string; transport: Transport; bound: Endpoint }
  | { type: 'gateway-publish-refused'; at: number; agent: string; service: string; code: string; message: string }
  | { type: 'agent-connected'; at: number; gateway: string; resumed: boolean }
  | { type: 'agent-disconnected'; at: number; failure: string; message: string; retryInMs: number }
  | { type: 'agent-published'; at: number; service: string; bound: Endpoint }
  | { type: 'agent-publish-refused'; at: number; service: string; code: string; message: string }
  | { type: 'agent-datagram-mode'; at: number; mode: 'udp' | 'tls' };

export type EventType = SluiceEvent['type'];
export type Sink = (event: SluiceEvent) => void;
/** Which event types a sink reads (asked again at every `wants`, so it may change, e.g. with the config). */
export type Interest = (type: EventType) => boolean;

/** The events every session makes (one or two when it starts, one when it ends): built only when a sink wants them. */
export const PER_SESSION_EVENTS: ReadonlySet<EventType> = new Set<EventType>(['session-started', 'dial-ok', 'session-ended']);

/** The Interest of a sink that reads none of the per-session events (the process log's sinks). */
// Compared, not looked up in the set: asked several times per connection, and a set lookup costs more than three compares.
export const notPerSession: Interest = (type) => type !== 'session-started' && type !== 'dial-ok' && type !== 'session-ended';

/**
 * The one event stream. Sessions and listeners publish; the access log, metrics, flow records
 * and the admin API subscribe. Delivery is synchronous and in order, so sinks must be cheap and
 * buffer their own I/O. A sink that throws is detached and reported, never allowed to break the
 * data path.
 */
export class EventStream {
  #sinks: Sink[] = [];
  /** Of the sinks that said which types they read (subscribe's `interest`); the others read every type. */
  #interests: Interest[] = [];
  #readAll = 0;
  #onSinkError: (err: unknown) => void;

  constructor(onSinkError: (err: unknown) => void = () => {}) {
    this.#onSinkError = onSinkError;
  }

  /**
   * `interest`: which types the sink reads; without it, every type. Every event still reaches every
   * sink; the interests only let publishers skip building events nobody reads (`wants`).
   */
  subscribe(sink: Sink, interest?: Interest): () => void {
    this.#sinks = [...this.#sinks, sink];
    if (interest) this.#interests = [...this.#interests, interest];
    else this.#readAll++;
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      this.#sinks = this.#sinks.filter((s) => s !== sink);
      if (interest) this.#interests = this.#interests.filter((i) => i !== interest);
      else this.#readAll--;
    };
  }

  /** Whether some sink reads events of `type` now: a publisher may skip building one nobody would read. */
  wants(type: EventType): boolean {
    if (this.#readAll > 0) return true;
    const interests = this.#interests;
    for (let i = 0; i < interests.length; i++) if (interests[i]!(type)) return true;
    return false;
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

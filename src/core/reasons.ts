/*
 * Why flows end, are refused or lose datagrams: stable strings that logs, metrics, the admin API
 * and admission share (observe/events.ts carries them on the event stream).
 */

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
  /** A pooled route had no member taking sessions (every one down, ejected or draining; docs/pools.md). */
  | 'no-healthy-upstream'
  | 'evicted'
  | 'route-removed'
  | 'shutdown'
  | 'drain-deadline'
  /** A live session whose client a changed verdict now refuses (docs/access-control.md, "Live sessions"). */
  | VerdictReason;

/** Why an admission step (ACL, CrowdSec) refuses a client: new ones are rejected, live ones end with it. */
export type VerdictReason =
  | 'acl-cidr'
  | 'acl-country'
  | 'crowdsec'
  | 'banned'
  /** Fleet-wide limits of a gateway fleet (docs/fleet.md): the source's rate or cap across all gateways, or Redis down under `onRedisDown: deny`. */
  | 'fleet-source-rate'
  | 'fleet-source-sessions'
  | 'fleet-unavailable';

/** What changed the inputs of admission verdicts (a metric label: a closed set; ban sources add theirs). */
export type VerdictCause = 'reload' | 'crowdsec' | 'bans';

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
  | 'proxy-header-untrusted'
  /** A shared TCP address (routing by name, docs/sni.md): no route matched the ClientHello and none is the default. */
  | 'no-route-for-name'
  /** A shared TCP address: the first bytes are not a ClientHello Sluice accepts (detail: the reader's reason). */
  | 'client-hello-invalid'
  /** A shared TCP address: no complete ClientHello within the deadline. */
  | 'client-hello-timeout'
  /** A pooled route had no member taking sessions (docs/pools.md); never counted against the client by ban rules. */
  | 'no-healthy-upstream';

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
  | 'session-share'
  /** Dropped by the kernel at a flooding client's own socket, its queue full (docs/expose.md, "A flooding client's own socket"). */
  | 'isolated-kernel'
  /** Waited in a parked socket's queue longer than its bound: a backlog outliving its senders (docs/expose.md, "A backlog outlives its senders"). */
  | 'stale';

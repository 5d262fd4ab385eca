import type { Endpoint } from '../core/address.js';
import type { RouteOrigin } from '../config/types.js';
import type { EndReason } from '../observe/events.js';
import type { DialInFlight, DialJoin, StreamConn } from '../datapath/stream-datapath.js';
import type { ShellFlow } from '../session/session-shell.js';
import type { SessionInfo } from './route.js';

/**
 * One client connection of a TCP route (tcp-route.ts) and what the route knows of it: its state,
 * its upstream once dialed, how to stop its relay, its place in the route's live connections.
 * The route moves it; `sessionInfoOf` is how the admin views see it.
 * A connection is its own DialJoin (stream-datapath.ts): no object per dial to offer the join.
 */
export class TcpConnection implements ShellFlow, DialJoin {
  readonly proto = 'tcp' as const;
  state: 'dialing' | 'open' | 'closed' = 'dialing';
  upstream: Endpoint | undefined;
  stop: ((reason: EndReason) => void) | undefined;
  /** A dial in the route's stream datapath, until it answers. */
  dialing: DialInFlight | undefined;
  origin: RouteOrigin | undefined;
  listenPort: number | undefined;
  /** The per-source key admission counted this connection under (AdmissionLimits.keyOf). */
  source = '';
  wouldEndNoted = false;
  /** The rule that ended it, when a verdict did. */
  endDetail: string | undefined;
  /** Relayed to an upstream that has not accepted yet (StreamDialer.dialEarly); still 'dialing'. */
  awaitingAccept = false;
  /** The idle timeout its pair gets when the datapath joins it at connect (DialJoin). */
  idleTimeoutMs = 0;
  /** Its place in the route's live connections (FlowSlots). */
  slot = -1;
  constructor(
    readonly id: number,
    readonly route: string,
    readonly client: Endpoint,
    readonly down: StreamConn,
    readonly startedAt: number,
    readonly startedWall: number,
  ) {}
}

/** A connection as the admin views list it (bytes so far on the client side). */
export function sessionInfoOf(c: TcpConnection): SessionInfo {
  return {
    id: c.id,
    route: c.route,
    proto: 'tcp',
    client: c.client,
    upstream: c.upstream,
    state: c.state,
    startedAt: c.startedWall,
    origin: c.origin,
    bytesFromClient: c.down.bytesRead,
    packetsFromClient: 0,
    bytesToClient: c.down.bytesWritten,
    packetsToClient: 0,
  };
}

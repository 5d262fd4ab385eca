import { MAX_DATAGRAM_PAYLOAD_BYTES, PEER_TAG_BIT, type DatagramOrigin } from '../protocol/tunnel/index.js';
import { CHANNEL_BACKLOG_BYTES, type ControlChannel } from '../upstream/agent/control-channel.js';
import type { SendBudget } from '../upstream/agent/send-budget.js';
import type { OffloadGroup, TunnelEnd } from '../datapath/offload.js';
import { Connectee, type OffloadedTag } from './connectee.js';
import type { AgentUdp } from './agent-udp.js';
import type { GatewayCounters } from './counters.js';
import type { ConnecteeTable } from './connectee-table.js';
import type { RelayedLink } from './peer-flows.js';

/**
 * The datagram side of an agent link (agent-link.ts): how one datagram toward the agent is
 * carried (sealed UDP, else a DATAGRAM frame on the control channel), where one from the agent
 * goes, and the tunnel side a connectee gets in the native batch. The link passes what these read at the moment of the call;
 * nothing here keeps state of its own.
 */

/** Peer flows have no public route to report budget drops on: they are counted per agent only. */
export const noRoute = { routeName: (): undefined => undefined };

/** A connectee's origin as a DATAGRAM frame carries it (with the public port for a range service). */
function originOf(c: Connectee): DatagramOrigin {
  return c.port === undefined ? { serviceId: c.serviceId, client: c.client } : { serviceId: c.serviceId, client: c.client, port: c.port };
}

/**
 * Sealed UDP while the agent's address is fresh, else a DATAGRAM frame on `channel` (null when
 * there is none or the agent does not read full-size frames yet) unless it is backed up; false
 * when dropped. Counts on `counters` either way.
 */
export function sendDatagram(
  udp: AgentUdp, channel: ControlChannel | null, counters: GatewayCounters, tag: number, payload: Buffer, origin: Connectee | undefined,
): boolean {
  // A range service's origin names the port: 2 bytes more while it rides (origin-block.ts).
  if (payload.length > MAX_DATAGRAM_PAYLOAD_BYTES - (origin?.port === undefined ? 0 : 2)) {
    counters.datagramsToAgentDropped++;
    return false;
  }
  if (udp.send(tag, payload, origin?.originBlock)) {
    counters.datagramsToAgent++;
    return true;
  }
  if (channel && channel.backlog < CHANNEL_BACKLOG_BYTES) {
    channel.send({ type: 'datagram', tag, origin: origin && originOf(origin), payload });
    counters.datagramsToAgentOverTls++;
    return true;
  }
  counters.datagramsToAgentDropped++;
  return false;
}

/** What the batch's tunnel side reads of the link: fixed for the link's life except `closed()`. */
export interface TunnelSide {
  readonly udp: AgentUdp;
  readonly budget: SendBudget;
  readonly counters: GatewayCounters;
  /** The link's sessions in the batch: closed when the keys or the agent's address change. */
  readonly offloads: OffloadGroup;
  closed(): boolean;
}

/** The tunnel side of `c` for the native batch, or null (see AgentLink.offloadEnd). */
export function tunnelEndOf(side: TunnelSide, c: OffloadedTag): TunnelEnd | null {
  if (c.closed || !c.answered || side.closed()) return null;
  const now = side.udp.current();
  if (now === undefined) return null;
  const { keys, address } = now;
  const tag = c.tag;
  const { budget, counters, udp } = side;
  return {
    kind: 'tunnel',
    sealer: keys.sealer,
    opener: keys.opener,
    tag,
    peer: address,
    pinPeer: true,
    grant: (want) => budget.take(c.fair, want),
    pools: budget.pools,
    charge: (n) => budget.charge(c.fair, n),
    bank: () => c.fair.bank,
    // A relayed peer flow's drops are counted on the budget, not per route (as in sendTagged).
    dropped: (b, s, st) => budget.countDrops(c.fair, b, s, c instanceof Connectee ? c : noRoute, st),
    forwarded: (to, from) => {
      counters.datagramsToAgent += to;
      counters.datagramsFromAgent += from;
    },
    valid: () => !c.closed && c.tag === tag && !side.closed() && udp.isCurrent(keys, address),
    groups: [side.offloads, c.offloads],
  };
}

/**
 * One datagram from the agent on `tag`: to the peer relay for a peer tag, else to the connectee
 * that holds the tag; for a tag nobody holds, DATAGRAM_CLOSE back on `channel` (null when there is
 * none or the agent does not read full-size frames yet) so the agent drops its side.
 */
export function deliverDatagram(
  connectees: ConnecteeTable, peers: { fromOpener(link: RelayedLink, tag: number, payload: Buffer): void }, link: RelayedLink,
  channel: ControlChannel | null, tag: number, payload: Buffer,
): void {
  if (tag >= PEER_TAG_BIT) return peers.fromOpener(link, tag, payload);
  const c = connectees.find(tag);
  if (!c || c.closed) {
    // The public session is gone; tell the agent to drop its side.
    channel?.send({ type: 'datagram-close', tag });
    return;
  }
  // Only an answer on the current tag shows the agent knows it; one on an old alias does not.
  if (c.tag === tag) c.answered = true;
  c.receiver.onUpstreamDatagram(payload);
}

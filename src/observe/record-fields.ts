import type { Endpoint } from '../core/address.js';
import type { FlowCounters, FlowRef } from './events.js';

/**
 * Protocols a flow record may carry: Sluice's own flows are tcp or udp; kernel flows
 * (conntrack) add the others. ICMP flows have ports 0 and carry `icmpType`/`icmpCode`.
 */
export type FlowProto = 'tcp' | 'udp' | 'udplite' | 'sctp' | 'dccp' | 'icmp' | 'icmpv6';

/**
 * Field names shared by the access log and flow records, so the same thing has the same name
 * everywhere (docs/records.md).
 */
export interface FlowFields {
  flowId: number;
  route: string;
  proto: 'tcp' | 'udp';
  clientAddr: string;
  clientPort: number;
  upstreamAddr?: string;
  upstreamPort?: number;
  /** The port the client reached, on a route whose listen is a port range (docs/ranges.md). */
  listenPort?: number;
  /** Routes from container labels: which container declared the route (docs/containers.md). */
  origin?: { container: string; containerId: string; labels: 'sluice' | 'godoxy' };
}

export function flowFields(flow: FlowRef, upstream?: Endpoint): FlowFields {
  const f: FlowFields = { flowId: flow.id, route: flow.route, proto: flow.proto, clientAddr: flow.client.address, clientPort: flow.client.port };
  if (upstream) {
    f.upstreamAddr = upstream.address;
    f.upstreamPort = upstream.port;
  }
  if (flow.listenPort !== undefined) f.listenPort = flow.listenPort;
  const o = flow.origin;
  if (o) f.origin = { container: o.container, containerId: o.containerId, labels: o.labels };
  return f;
}

export function counterFields(c: FlowCounters): FlowCounters {
  return {
    bytesFromClient: c.bytesFromClient,
    bytesToClient: c.bytesToClient,
    packetsFromClient: c.packetsFromClient,
    packetsToClient: c.packetsToClient,
  };
}

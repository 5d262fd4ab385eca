import { formatHostPort, type Endpoint } from '../../core/address.js';
import type { StreamDatapath } from '../../datapath/stream-datapath.js';
import type { DatagramDialer, StreamDialer } from '../dialer.js';
import { isSocketDialer } from '../direct/socket-dial.js';
import type { MemberSpec, MemberWays } from './member.js';
import { tcpProbe, udpProbe, type ExpectBytes } from './probe.js';

/** A pool member written as host:port in the config, after its name (if any) was resolved to `remote`. */
export interface DirectMemberConfig {
  readonly remote: Endpoint;
  /** The name it came from, when it was one (shown in its label). */
  readonly name?: string;
  readonly weight: number;
  readonly backup: boolean;
}

/** What a route's active check sends and expects (config `health.udp` / `health.tcp`). */
export interface ProbeSpec {
  readonly transport: 'udp' | 'tcp';
  /** Required for UDP (config check). */
  readonly send?: Buffer;
  readonly expect?: ExpectBytes;
}

/**
 * A host:port member: dialed through the node's own direct dialers at its pinned address (no
 * resolution per flow), checked by a probe to that address only.
 */
export function directMember(c: DirectMemberConfig, dialers: { stream: StreamDialer; datagram: DatagramDialer }, probe: ProbeSpec | undefined): MemberSpec {
  const target = { host: c.remote.address, port: c.remote.port };
  const key = formatHostPort(c.remote.address, c.remote.port);
  const stream = dialers.stream;
  const ways: MemberWays = {
    dial: (opts) => stream.dial(target, opts),
    ...(isSocketDialer(stream) ? { dialConn: (opts, datapath: StreamDatapath) => stream.dialConn(target, opts, datapath) } : {}),
    open: (receiver, opts) => dialers.datagram.open(target, receiver, opts),
    ...(probe ? { probe: probeOf(c.remote, probe) } : {}),
  };
  return { key, label: c.name ? `${c.name}/${key}` : key, weight: c.weight, backup: c.backup, remote: c.remote, ways };
}

function probeOf(remote: Endpoint, p: ProbeSpec): (signal: AbortSignal) => Promise<'ok' | 'failed' | 'refused'> {
  if (p.transport === 'udp') {
    const send = p.send ?? Buffer.alloc(0);
    return (signal) => udpProbe(remote, send, p.expect, signal);
  }
  return (signal) => tcpProbe(remote, p.send, p.expect, signal);
}

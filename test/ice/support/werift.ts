import os from 'node:os';
import type { TestContext } from 'node:test';
import { Candidate, Connection, type IceOptions } from 'werift-ice';
import type { IceAgent } from '../../../src/ice/agent.js';
import { ICE_DATA_PREFIX } from '../../../src/ice/channel.js';
import { formatCandidate } from '../../../src/ice/candidate.js';

/**
 * werift-ice (npm, dev only) as an independent ICE peer, kept on loopback: it has no option to
 * exclude interfaces, so os.networkInterfaces is narrowed to `lo` while a test runs (loopback is
 * "internal" and werift skips it, so 127.0.0.1 comes back through additionalHostAddresses), its
 * sockets bind 127.0.0.1, and it is always given a STUN server (it would otherwise ask Google's).
 */

export function loopbackOnly(t: TestContext): void {
  const original = os.networkInterfaces;
  os.networkInterfaces = () => ({
    lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
  });
  t.after(() => void (os.networkInterfaces = original));
}

export interface WeriftPeer {
  readonly conn: Connection;
  /** Application datagrams werift received, with Sluice's prefix byte removed. */
  readonly got: Buffer[];
  /** Sends one application datagram with Sluice's prefix byte in front. */
  send(buf: Buffer): Promise<void>;
}

export function werift(t: TestContext, controlling: boolean, options: Partial<IceOptions>): WeriftPeer {
  const conn = new Connection(controlling, {
    useIpv4: true, useIpv6: false, additionalHostAddresses: ['127.0.0.1'], interfaceAddresses: { udp4: '127.0.0.1' }, ...options,
  });
  t.after(() => conn.close().catch(() => {}));
  const got: Buffer[] = [];
  conn.onData.subscribe((buf) => {
    if (buf[0] === ICE_DATA_PREFIX) got.push(buf.subarray(1));
  });
  return { conn, got, send: (buf) => conn.send(Buffer.concat([Buffer.from([ICE_DATA_PREFIX]), buf])) };
}

/** Wires signalling both ways: credentials, trickled candidates, end-of-candidates. */
export async function signalWerift(agent: IceAgent, peer: WeriftPeer): Promise<void> {
  const { conn } = peer;
  conn.onIceCandidate.subscribe((c) => agent.addRemoteCandidate(`candidate:${c.toSdp()}`));
  agent.on('candidate', (c) => void conn.addRemoteCandidate(Candidate.fromSdp(formatCandidate(c).slice('candidate:'.length))));
  agent.on('gathering-complete', () => void conn.addRemoteCandidate(undefined));
  conn.setRemoteParams({ iceLite: false, usernameFragment: agent.localCredentials.ufrag, password: agent.localCredentials.pwd });
  await Promise.all([conn.gatherCandidates(), agent.gather()]);
  agent.setRemoteCredentials({ ufrag: conn.localUsername, pwd: conn.localPassword });
  agent.addRemoteCandidate(null);
}

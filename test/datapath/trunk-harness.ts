// What the trunk's engine tests share: two trunk ends in one native engine over a real loopback
// TCP connection, and plain connections accepted by the engine with Node sockets at their far ends.
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';
import type { PairEnd, StreamConn } from '../../src/datapath/stream-datapath.js';
import type { StreamTrunk } from '../../src/datapath/stream-trunk.js';
import { mirror, nativeDp, nativeLink, testKeys } from './sealed-harness.js';

export interface TrunkEnds {
  /** The gateway's end (expects, then attaches public clients). */
  gw: StreamTrunk;
  /** The agent's end (attaches its local connections as new streams). */
  agent: StreamTrunk;
  gwEnded: Promise<string>;
  agentEnded: Promise<string>;
}

export async function trunkEnds(t: TestContext, host: string): Promise<TrunkEnds> {
  const dp = nativeDp();
  const link = await nativeLink(t, host);
  const keys = testKeys(0, 1);
  let gwEnd!: (c: string) => void;
  let agentEnd!: (c: string) => void;
  const gwEnded = new Promise<string>((r) => (gwEnd = r));
  const agentEnded = new Promise<string>((r) => (agentEnd = r));
  const gw = dp.trunk(link.accepted, keys, gwEnd);
  const agent = dp.trunk(link.dialed, mirror(keys), agentEnd);
  if (!gw || !agent) throw new Error('the addon has no trunk (node native/build.mjs)');
  t.after(() => (gw.close(), agent.close()));
  return { gw, agent, gwEnded, agentEnded };
}

/** `n` connections accepted by the engine from one listener, each with its Node socket. */
export async function acceptMany(t: TestContext, host: string, n: number): Promise<{ conn: StreamConn; peer: net.Socket }[]> {
  const dp = nativeDp();
  const byPort = new Map<number, StreamConn>();
  let wake: (() => void) | undefined;
  const listener = await dp.listen(host, 0, (c) => {
    byPort.set(c.remote!.port, c);
    wake?.();
  });
  const peers: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const peer = net.connect({ host, port: listener.local.port, allowHalfOpen: true });
    peer.on('error', () => {});
    t.after(() => peer.destroy());
    peers.push(peer);
  }
  await Promise.all(peers.map((p) => (p.connecting ? once(p, 'connect') : undefined)));
  while (byPort.size < n) await new Promise<void>((r) => (wake = r));
  await listener.close();
  return peers.map((peer) => {
    const conn = byPort.get(peer.localPort!)!;
    t.after(() => conn.destroy());
    return { conn, peer };
  });
}

/** One stream across the trunk: a public client at the gateway's end, a local service at the agent's. */
export interface TrunkStreamCase {
  client: net.Socket;
  service: net.Socket;
  gwEnd: Promise<PairEnd>;
  agentEnd: Promise<PairEnd>;
  stopGw: () => unknown;
  stopAgent: () => unknown;
}

export async function openStreams(t: TestContext, host: string, ends: TrunkEnds, n: number, firstSid = 1): Promise<TrunkStreamCase[]> {
  const clients = await acceptMany(t, host, n);
  const services = await acceptMany(t, host, n);
  return clients.map((c, i) => {
    const sid = firstSid + i;
    const s = services[i]!;
    let gwEnd!: (e: PairEnd) => void;
    let agentEnd!: (e: PairEnd) => void;
    const gwEnded = new Promise<PairEnd>((r) => (gwEnd = r));
    const agentEnded = new Promise<PairEnd>((r) => (agentEnd = r));
    if (!ends.gw.expect(sid)) throw new Error(`expect ${sid} refused`);
    const stopAgent = ends.agent.attach(sid, s.conn, 0, false, agentEnd);
    const stopGw = ends.gw.attach(sid, c.conn, 0, true, gwEnd);
    if (!stopAgent || !stopGw) throw new Error(`attach ${sid} refused`);
    return { client: c.peer, service: s.peer, gwEnd: gwEnded, agentEnd: agentEnded, stopGw, stopAgent };
  });
}

/** Everything `s` sends until its FIN. */
export function readAll(s: net.Socket): Promise<Buffer> {
  const got: Buffer[] = [];
  s.on('data', (c: Buffer) => got.push(c));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(got)));
    s.once('error', reject);
  });
}

export async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

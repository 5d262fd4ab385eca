import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { forwarded } from '../datapath/forwarded.js';
import { ICE_DATA_PREFIX } from '../../src/ice/channel.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { waitFor } from '../helpers/net.js';
import { connected, peerAgentConfig, peerGatewayConfig, startAgent, startGateway, udpClient, udpEcho } from './connect-helpers.js';

// Peer flows forwarded inside the native batch (docs/datapath.md, "Peer paths in the batch"): the
// connect listener's sessions at the laptop and the exposed service's at home, over the direct
// path (sealed behind ICE's prefix) and over the relay, with records, counters and removal.

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;
const state = mkdtempSync(join(tmpdir(), 'sluice-peer-offload-'));
process.once('exit', () => rmSync(state, { recursive: true, force: true }));

const ended = (seen: readonly SluiceEvent[]) => seen.filter((e): e is Extract<SluiceEvent, { type: 'session-ended' }> => e.type === 'session-ended');

/** Gateway, home and laptop on one native datapath of their own (its counters are this test's only). */
async function setup(t: TestContext, path: 'direct' | 'relay', idle = '30s') {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout);
  t.after(() => dp.destroy());
  const gw = await startGateway(t, peerGatewayConfig(state), undefined, dp);
  const echo = await udpEcho(t);
  const home = await startAgent(t, peerAgentConfig(gw, 'home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop], udp: { idleTimeout: ${idle} } }\n`), undefined, dp);
  const laptop = await startAgent(
    t,
    peerAgentConfig(gw, 'laptop', `  connect:\n    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0, path: ${path}, udp: { idleTimeout: ${idle} } }\n`),
    undefined,
    dp,
  );
  await connected(home.agent);
  await connected(laptop.agent);
  await waitFor(() => home.agent.datagramMode === 'udp' && laptop.agent.datagramMode === 'udp', 'both agents on UDP');
  const listen = laptop.agent.connectRoutes[0]!.local.port;
  const client = await udpClient(t);
  /** One round trip through the connect listener. */
  const roundTrip = async (msg: string) => {
    const before = client.got.length;
    client.send(msg, listen);
    await waitFor(() => client.got.length > before, `the answer to ${msg}`, 5000);
    assert.equal(client.got[before], msg);
  };
  /** Round trips until the laptop's flow is in the batch (a hand-over happens on a datagram through JavaScript): how many it took (bounded). */
  const untilOffloaded = async (prefix: string): Promise<number> => {
    let n = 0;
    while (!(laptop.agent.peers.flows[0]?.offloads.size === 1) && n < 200) await roundTrip(`${prefix}${n++}`);
    assert.equal(laptop.agent.peers.flows[0]?.offloads.size, 1, `the flow in the batch after ${n} more round trips`);
    return n;
  };
  return { dp, gw, echo, home, laptop, listen, client, roundTrip, untilOffloaded };
}

test('the direct peer path in the batch: both agents forward an established flow without JavaScript; records and counters count every datagram', { skip }, async (t) => {
  const x = await setup(t, 'direct', '1s');
  await x.roundTrip('first');
  const link = x.laptop.agent.peers.links.get('home')!;
  assert.equal(link.path, 'direct');
  const n = 300;
  let bytes = 'first'.length;
  for (let i = 0; i < n; i++) {
    const msg = `direct ${i} `.padEnd(12 + (i % 40), '.');
    bytes += msg.length;
    await x.roundTrip(msg);
  }
  // Four entries per round trip (laptop: client -> home and home -> client; home: laptop -> service
  // and service -> laptop). The first datagrams of each session take JavaScript (4 before the
  // hand-over, and at home its send budget's credit ramps up from 8).
  const native = forwarded(x.dp);
  assert.ok(native >= 4 * n - 80, `forwarded in the batch: ${native} of ${4 * (n + 1)} hops`);
  const flow = x.laptop.agent.peers.flows[0]!;
  assert.equal(flow.offloads.size, 1, 'the flow is in the batch');
  await waitFor(() => ended(x.laptop.seen).length === 1 && ended(x.home.seen).length === 1, 'both sessions end idle', 5000);
  for (const e of [...ended(x.laptop.seen), ...ended(x.home.seen)]) {
    assert.deepEqual(e.counters, { bytesFromClient: bytes, packetsFromClient: n + 1, bytesToClient: bytes, packetsToClient: n + 1 }, `${e.flow.route} counts every datagram`);
  }
  assert.equal(ended(x.laptop.seen)[0]!.flow.route, 'connect/home-wg');
  // The batch's datagrams are the flow's and the link's direct ones; nothing went by the relay.
  assert.equal(flow.counters.direct + flow.counters.relayed, n + 1, JSON.stringify(flow.counters));
  assert.equal(flow.counters.relayed, 0);
  assert.equal(flow.counters.received, n + 1);
  assert.ok(link.counters.directSent >= n + 1 && link.counters.directReceived >= n + 1, JSON.stringify(link.counters));
  assert.equal(x.echo.seen.length, n + 1, 'each datagram reached the service once');
  assert.equal(x.gw.gateway.counters.datagramsToAgent, 0, 'the gateway carried no data datagram');
});

test('the direct path going idle removes both agents\' entries at once; traffic goes on and is handed to the batch again', { skip }, async (t) => {
  const x = await setup(t, 'direct');
  for (let i = 0; i < 20; i++) await x.roundTrip(`a${i}`);
  const flow = x.laptop.agent.peers.flows[0]!;
  const extra = await x.untilOffloaded('w');
  const before = forwarded(x.dp);
  const link = x.laptop.agent.peers.links.get('home')!;
  link.idle();
  assert.equal(flow.offloads.size, 0, 'the laptop\'s entries went with the attempt');
  await waitFor(() => x.home.agent.peers.links.get('laptop')?.state === 'idle', 'home\'s link idle');
  // The next datagrams wait for a new direct path (path: direct holds them), then go in the batch
  // again (handed over on a datagram through JavaScript once the path is usable: bounded).
  const sent = await x.untilOffloaded('b');
  // Home hands its side over on its own sweep tick: a few more round trips, then the batch carries all.
  for (let i = 0; i < 20; i++) await x.roundTrip(`c${i}`);
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < 20; i++) await x.roundTrip(`d${i}`);
  const from = forwarded(x.dp);
  for (let i = 0; i < 40; i++) await x.roundTrip(`e${i}`);
  // Most of them (a loaded machine may put the path in doubt for a moment, which takes JavaScript).
  assert.ok(forwarded(x.dp) - from >= 4 * 40 / 2, `forwarded after the new path: ${forwarded(x.dp) - from} of 160 hops (before the idle: ${before})`);
  assert.equal(x.echo.seen.length, 100 + extra + sent);
});

test('replayed and forged datagrams on an offloaded direct path are dropped and counted; the flow goes on', { skip }, async (t) => {
  if (!loaded.ok) throw new Error('unreachable');
  const x = await setup(t, 'direct');
  // Home's gateway socket as ICE sends on it: keep copies of what it frames for the laptop.
  const hp = x.home.agent.homes[0]!.path;
  const iceSocket = hp.iceSocket.bind(hp);
  const captured: { buf: Buffer; port: number; address: string }[] = [];
  let raw: ((buf: Buffer, port: number, address: string) => void) | undefined;
  hp.iceSocket = () => {
    const s = iceSocket();
    if (!s) return s;
    raw = (buf, port, address) => s.send(buf, port, address);
    return {
      local: s.local,
      send: (buf, port, address) => {
        if (buf[0] === ICE_DATA_PREFIX) captured.push({ buf: Buffer.from(buf), port, address });
        s.send(buf, port, address);
      },
    };
  };
  for (let i = 0; i < 20; i++) await x.roundTrip(`r${i}`);
  const flow = x.laptop.agent.peers.flows[0]!;
  await x.untilOffloaded('w');
  assert.ok(captured.length > 0 && raw, 'home sealed direct datagrams in JavaScript before the hand-over');
  const link = x.laptop.agent.peers.links.get('home')!;
  const rejected = link.counters.directRejected;
  const got = x.client.got.length;
  const { buf, port, address } = captured[0]!;
  raw!(buf, port, address);
  const forged = Buffer.from(captured[captured.length - 1]!.buf);
  forged[forged.length - 1]! ^= 1;
  raw!(forged, port, address);
  await waitFor(() => link.counters.directRejected === rejected + 2, `both refused (${link.counters.directRejected - rejected})`);
  await x.roundTrip('still here');
  assert.equal(x.client.got.length, got + 1, 'nothing of the replay or the forgery reached the client');
  assert.equal(flow.offloads.size, 1);
});

test('a relayed flow in the batch at the laptop, the gateway (resealed from one agent\'s keys to the other\'s) and home; counters count every datagram', { skip }, async (t) => {
  const x = await setup(t, 'relay');
  const c = x.gw.gateway.counters;
  const n = 200;
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const msg = `relay ${i}`.padEnd(10 + (i % 30), '-');
    bytes += msg.length;
    await x.roundTrip(msg);
  }
  const flow = x.laptop.agent.peers.flows[0]!;
  assert.equal(flow.offloads.size, 1, 'the laptop\'s flow is in the batch');
  // Six entries per round trip: the laptop's two, the gateway's two reseal entries, home's two.
  const native = forwarded(x.dp);
  assert.ok(native >= 6 * n - 60, `forwarded in the batch: ${native} of ${6 * n}`);
  await waitFor(() => flow.counters.relayed === n && c.peerDatagramsToService === n && c.peerDatagramsToOpener === n, `every relayed datagram counted (flow ${JSON.stringify(flow.counters)}, gateway ${c.peerDatagramsToService}/${c.peerDatagramsToOpener})`, 3000);
  assert.equal(c.peerBytesToService, bytes);
  assert.equal(c.peerBytesToOpener, bytes);
  assert.equal(flow.counters.direct, 0);
  assert.equal(x.echo.seen.length, n);
});

test('home\'s side of a direct flow draws on its send budget\'s pool in the batch: no datagram reaches JavaScript for credit', { skip }, async (t) => {
  const x = await setup(t, 'direct');
  // Home's tunnel side of the flow as its link gives it to the batch.
  const homeLink = () => x.home.agent.peers.links.get('laptop');
  await x.roundTrip('first');
  const link = homeLink()!;
  const ends: NonNullable<ReturnType<typeof link.offloadEnd>>[] = [];
  const give = link.offloadEnd.bind(link);
  link.offloadEnd = (flow) => {
    const end = give(flow);
    if (end) ends.push(end);
    return end;
  };
  await x.untilOffloaded('w');
  // Home hands over on its own sweep: round trips until a run of 20 is carried whole (bounded).
  for (let tries = 0; tries < 30; tries++) {
    const from = forwarded(x.dp);
    for (let i = 0; i < 20; i++) await x.roundTrip(`h${tries}.${i}`);
    if (forwarded(x.dp) - from === 80) break;
  }
  assert.ok(ends.length > 0 && ends.every((e) => e.pools !== undefined && e.charge !== undefined && e.dropped !== undefined), 'home\'s direct end carries the budget\'s pools');
  // With credit in chunks from JavaScript, one datagram in 128 at most would reach it; from the
  // pool, none. A moment of doubt on a loaded machine takes JavaScript too: three tries.
  const n = 300;
  let best = 0;
  for (let tries = 0; tries < 3 && best < 4 * n; tries++) {
    const from = forwarded(x.dp);
    for (let i = 0; i < n; i++) await x.roundTrip(`p${tries}.${i}`);
    best = Math.max(best, forwarded(x.dp) - from);
  }
  assert.equal(best, 4 * n, 'every hop of a run of round trips in the batch');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { registerExposeMetrics } from '../../src/ops/expose-metrics.js';
import { PEER_TAG_BIT } from '../../src/protocol/tunnel/index.js';
import { sleep, waitFor } from '../helpers/net.js';
import { rawAgent, startPeerGateway, type RawAgent } from './peer-helpers.js';

const T = (PEER_TAG_BIT | 1) >>> 0;

/** home offers its UDP service `wg` (id 1) to `peers`; resolves once the gateway holds the offer. */
async function offerWg(gw: Awaited<ReturnType<typeof startPeerGateway>>, home: RawAgent, peers: string[]) {
  home.send({ type: 'offer', serviceId: 1, name: 'wg', transport: 'udp', peers });
  await waitFor(() => {
    const link = gw.gateway.agent('home');
    return link !== undefined && [...gw.gateway.peers.offers(link).values()].some((o) => o.serviceId === 1 && o.peers.size === peers.length);
  }, 'offer stored');
}

/** laptop opens a UDP flow to home's wg on tag `tag`; returns home's connectee tag for it. */
async function openWg(laptop: RawAgent, tag = T): Promise<number> {
  laptop.send({ type: 'peer-open', tag, transport: 'udp', peer: 'home', service: 'wg' });
  const ok = await laptop.next('peer-open-ok', (m) => m.tag === tag);
  return ok.peerTag;
}

test('a SIGNAL is forwarded with the sender name and the exact payload bytes, both ways', async (t) => {
  const gw = await startPeerGateway(t);
  const [home, laptop] = await Promise.all([rawAgent(t, gw, 'home'), rawAgent(t, gw, 'laptop')]);
  await offerWg(gw, home, ['laptop']);
  laptop.ready();
  const payload = Buffer.from([0, 1, 2, 0xff, 0x7b, 0x7d, 0x80]);
  laptop.send({ type: 'signal', peer: 'home', payload });
  const got = await home.next('signal');
  assert.equal(got.peer, 'laptop');
  assert.deepEqual(got.payload, payload);
  // home's offer names laptop: allowed both ways.
  home.send({ type: 'signal', peer: 'laptop', payload: Buffer.from('candidates') });
  const back = await laptop.next('signal');
  assert.equal(back.peer, 'home');
  assert.equal(back.payload.toString(), 'candidates');
  assert.equal(gw.gateway.counters.signalsForwarded, 2);
  assert.deepEqual(gw.gateway.counters.signalsRefused, {});
});

test('refused SIGNALs are answered with SIGNAL_ERROR and counted by code', async (t) => {
  const gw = await startPeerGateway(t);
  const laptop = await rawAgent(t, gw, 'laptop');
  const refusal = async (peer: string) => {
    laptop.send({ type: 'signal', peer, payload: Buffer.from('x') });
    const e = await laptop.next('signal-error');
    assert.equal(e.peer, peer);
    return e.code;
  };
  assert.equal(await refusal('nobody'), 'unknown-peer');
  assert.equal(await refusal('other'), 'peer-offline');
  const other = await rawAgent(t, gw, 'other');
  other.ready();
  await waitFor(() => gw.gateway.agent('other')?.reachable === true, 'other reachable');
  assert.equal(await refusal('other'), 'not-allowed');
  assert.equal(other.inbox.length, 0);
  const refused: Partial<Record<string, number>> = gw.gateway.counters.signalsRefused;
  assert.deepEqual({ ...refused }, { 'unknown-peer': 1, 'peer-offline': 1, 'not-allowed': 1 });
  // The bucket holds 200: a burst beyond it is refused with rate-limited.
  for (let i = 0; i < 300; i++) laptop.send({ type: 'signal', peer: 'nobody', payload: Buffer.alloc(0) });
  await waitFor(() => Object.values(refused).reduce((a, b) => a! + b!, 0)! >= 303, 'all answered');
  assert.ok((refused['rate-limited'] ?? 0) >= 50);
  assert.equal(gw.gateway.counters.signalsForwarded, 0);
});

test('a UDP peer flow over DATAGRAM frames: the target sees an origin, the answer comes back on the opener tag', async (t) => {
  const gw = await startPeerGateway(t);
  const [home, laptop] = await Promise.all([rawAgent(t, gw, 'home'), rawAgent(t, gw, 'laptop')]);
  await offerWg(gw, home, ['laptop']);
  laptop.send({ type: 'peer-open', tag: T, transport: 'udp', peer: 'home', service: 'wg' });
  // Frames may follow PEER_OPEN at once.
  laptop.send({ type: 'datagram', tag: T, origin: undefined, payload: Buffer.from('ping') });
  const ok = await laptop.next('peer-open-ok');
  assert.equal(ok.tag, T);
  // The target hears whose flow the connectee tag is (PEER_FLOW) before any of its datagrams.
  for (let i = 0; i < 300 && !home.inbox.some((m) => m.type === 'datagram'); i++) await sleep(10);
  const order = home.inbox.map((m) => m.type).filter((type) => type === 'peer-flow' || type === 'datagram');
  assert.deepEqual(order.slice(0, 2), ['peer-flow', 'datagram']);
  const notice = await home.next('peer-flow');
  // The client address is the opener's; the port is the flow's own (the first flow of laptop: 1).
  const client = { ...gw.gateway.agent('laptop')!.remote, port: 1 };
  assert.deepEqual(notice, { type: 'peer-flow', tag: ok.peerTag, origin: { serviceId: 1, client }, peer: 'laptop' });
  const d = await home.next('datagram');
  assert.equal(d.tag, ok.peerTag);
  assert.ok(d.tag < PEER_TAG_BIT);
  assert.equal(d.origin?.serviceId, 1);
  assert.deepEqual(d.origin?.client, client);
  assert.equal(d.payload.toString(), 'ping');
  home.send({ type: 'datagram', tag: d.tag, origin: undefined, payload: Buffer.from('pong!') });
  const back = await laptop.next('datagram');
  assert.equal(back.tag, T);
  assert.equal(back.origin, undefined);
  assert.equal(back.payload.toString(), 'pong!');
  const c = gw.gateway.counters;
  assert.deepEqual(c.peerFlows.udp, { ok: 1 });
  assert.deepEqual([c.peerDatagramsToService, c.peerBytesToService, c.peerDatagramsToOpener, c.peerBytesToOpener], [1, 4, 1, 5]);
  assert.deepEqual(gw.gateway.peers.flowCounts(), { udp: 1, tcp: 0 });
  laptop.send({ type: 'signal', peer: 'home', payload: Buffer.alloc(0) });
  laptop.send({ type: 'signal', peer: 'nobody', payload: Buffer.alloc(0) });
  await laptop.next('signal-error');

  const registry = new Registry();
  registerExposeMetrics(registry, () => ({ gateway: gw.gateway, agent: undefined }));
  const text = await registry.metrics();
  assert.match(text, /sluice_gateway_signals_total\{result="forwarded"\} 1/);
  assert.match(text, /sluice_gateway_signals_total\{result="unknown-peer"\} 1/);
  assert.match(text, /sluice_gateway_peer_flows_total\{transport="udp",result="ok"\} 1/);
  assert.match(text, /sluice_gateway_peer_relayed_datagrams_total\{direction="to-service"\} 1/);
  assert.match(text, /sluice_gateway_peer_relayed_datagrams_total\{direction="to-opener"\} 1/);
  assert.match(text, /sluice_gateway_peer_relayed_bytes_total\{transport="udp",direction="to-opener"\} 5/);
  assert.match(text, /sluice_gateway_peer_flows\{transport="udp"\} 1/);
});

test('a UDP peer flow over sealed UDP once keepalives made the opener address fresh', async (t) => {
  const gw = await startPeerGateway(t);
  const [home, laptop] = await Promise.all([rawAgent(t, gw, 'home'), rawAgent(t, gw, 'laptop')]);
  const udp = await laptop.udp(gw.gateway.udpAddress.port);
  const keepalives = setInterval(() => udp.keepalive(), 200);
  t.after(() => clearInterval(keepalives));
  udp.keepalive();
  await waitFor(() => gw.gateway.agent('laptop')?.udpFresh === true, 'laptop UDP fresh');
  await offerWg(gw, home, ['laptop']);
  const peerTag = await openWg(laptop);
  udp.data(T, Buffer.from('sealed ping'));
  const d = await home.next('datagram');
  assert.equal(d.tag, peerTag);
  // The client the target sees is the opener's UDP address, with the flow's own port (one per flow).
  assert.deepEqual(d.origin?.client, { address: '127.0.0.1', port: 1, family: 4 });
  assert.notEqual(udp.socket.address().port, 1);
  assert.equal(d.payload.toString(), 'sealed ping');
  home.send({ type: 'datagram', tag: peerTag, origin: undefined, payload: Buffer.from('sealed pong') });
  const back = await udp.nextData(T);
  assert.equal(back.origin, undefined);
  assert.equal(back.payload.toString(), 'sealed pong');
  assert.equal(laptop.inbox.filter((m) => m.type === 'datagram').length, 0);
  assert.equal(gw.gateway.counters.peerDatagramsToOpener, 1);
});

test('PEER_OPEN refusals: unknown-peer, peer-offline, not-allowed (whether or not the service exists), invalid-request', async (t) => {
  const gw = await startPeerGateway(t);
  const [home, laptop] = await Promise.all([rawAgent(t, gw, 'home'), rawAgent(t, gw, 'laptop')]);
  await offerWg(gw, home, ['other']);
  let tag = T;
  const refusal = async (peer: string, service: string, transport: 'udp' | 'tcp' = 'udp', useTag = ++tag) => {
    laptop.send({ type: 'peer-open', tag: useTag, transport, peer, service });
    const e = await laptop.next('peer-open-error', (m) => m.tag === useTag);
    return e.code;
  };
  assert.equal(await refusal('nobody', 'wg'), 'unknown-peer');
  assert.equal(await refusal('other', 'wg'), 'peer-offline');
  assert.equal(await refusal('home', 'wg'), 'not-allowed'); // offered, but not to laptop
  assert.equal(await refusal('home', 'nothing'), 'not-allowed'); // does not exist
  assert.equal(await refusal('home', 'wg', 'tcp', 7), 'not-allowed'); // wrong transport
  assert.equal(await refusal('home', 'wg', 'udp', 5), 'invalid-request'); // no top bit
  assert.equal(await refusal('home', 'wg', 'tcp', 6), 'invalid-request'); // an even stream id
  await offerWg(gw, home, ['laptop']);
  await openWg(laptop, T);
  assert.equal(await refusal('home', 'wg', 'udp', T), 'invalid-request'); // tag in use
  assert.deepEqual(gw.gateway.counters.peerFlows, {
    udp: { 'unknown-peer': 1, 'peer-offline': 1, 'not-allowed': 2, 'invalid-request': 2, ok: 1 },
    tcp: { 'not-allowed': 1, 'invalid-request': 1 },
  });
  assert.equal(home.inbox.filter((m) => m.type === 'datagram' || m.type === 'datagram-close').length, 0);
});

test('PEER_OPEN beyond gateway.maxPeerFlowsPerAgent is refused with rate-limited', async (t) => {
  const gw = await startPeerGateway(t, '  maxPeerFlowsPerAgent: 2');
  const [home, laptop] = await Promise.all([rawAgent(t, gw, 'home'), rawAgent(t, gw, 'laptop')]);
  await offerWg(gw, home, ['laptop']);
  await openWg(laptop, T);
  await openWg(laptop, T + 1);
  laptop.send({ type: 'peer-open', tag: T + 2, transport: 'udp', peer: 'home', service: 'wg' });
  assert.equal((await laptop.next('peer-open-error')).code, 'rate-limited');
  // Closing one makes room again.
  laptop.send({ type: 'datagram-close', tag: T });
  await openWg(laptop, T + 3);
});

test('PEER_OPEN faster than 200 a second (burst 1000) is refused with rate-limited, however many are closed again', async (t) => {
  const gw = await startPeerGateway(t);
  const [home, laptop] = await Promise.all([rawAgent(t, gw, 'home'), rawAgent(t, gw, 'laptop')]);
  await offerWg(gw, home, ['laptop']);
  // Open and close at once, 1100 times: the flow cap never binds, the opening rate does.
  for (let i = 0; i < 1100; i++) {
    laptop.send({ type: 'peer-open', tag: T + 100 + i, transport: 'udp', peer: 'home', service: 'wg' });
    laptop.send({ type: 'datagram-close', tag: T + 100 + i });
  }
  const refused = await laptop.next('peer-open-error', () => true, 5000);
  assert.equal(refused.code, 'rate-limited');
  assert.ok(refused.tag >= T + 100 + 1000, `the burst of 1000 passed first (refused tag ${refused.tag - T - 100})`);
});

test('DATAGRAM_CLOSE both ways: the opener closes its flow; the target ends it (no retag); a re-offer without the opener closes it', async (t) => {
  const gw = await startPeerGateway(t);
  const [home, laptop] = await Promise.all([rawAgent(t, gw, 'home'), rawAgent(t, gw, 'laptop')]);
  await offerWg(gw, home, ['laptop']);
  let peerTag = await openWg(laptop, T);
  // The opener closes: the target's connectee goes, and the tag is unknown afterwards.
  laptop.send({ type: 'datagram-close', tag: T });
  assert.equal((await home.next('datagram-close')).tag, peerTag);
  laptop.send({ type: 'datagram', tag: T, origin: undefined, payload: Buffer.from('late') });
  assert.equal((await laptop.next('datagram-close')).tag, T);
  assert.deepEqual(gw.gateway.peers.flowCounts(), { udp: 0, tcp: 0 });

  // The target drops its session: a peer flow is never re-tagged (its tag was named to the target
  // in PEER_FLOW and to the opener's direct path); the flow ends and the opener hears it.
  peerTag = await openWg(laptop, T + 1);
  laptop.send({ type: 'datagram', tag: T + 1, origin: undefined, payload: Buffer.from('a') });
  await home.next('datagram', (m) => m.tag === peerTag);
  home.send({ type: 'datagram-close', tag: peerTag });
  assert.equal((await laptop.next('datagram-close')).tag, T + 1);
  laptop.send({ type: 'datagram', tag: T + 1, origin: undefined, payload: Buffer.from('b') });
  assert.equal((await laptop.next('datagram-close')).tag, T + 1, 'the tag is unknown now');

  // A new OFFER of the service that no longer names laptop ends the flow on both sides.
  peerTag = await openWg(laptop, T + 4);
  laptop.send({ type: 'datagram', tag: T + 4, origin: undefined, payload: Buffer.from('c') });
  const again = await home.next('datagram', (m) => m.tag === peerTag);
  assert.equal(again.origin?.serviceId, 1);
  home.send({ type: 'offer', serviceId: 1, name: 'wg', transport: 'udp', peers: ['other'] });
  assert.equal((await laptop.next('datagram-close')).tag, T + 4);
  assert.equal((await home.next('datagram-close')).tag, again.tag);

  // UNPUBLISH of the service id withdraws its offer too.
  await offerWg(gw, home, ['laptop']);
  peerTag = await openWg(laptop, T + 2);
  home.send({ type: 'unpublish', serviceId: 1 });
  assert.equal((await laptop.next('datagram-close')).tag, T + 2);
  laptop.send({ type: 'peer-open', tag: T + 3, transport: 'udp', peer: 'home', service: 'wg' });
  assert.equal((await laptop.next('peer-open-error')).code, 'not-allowed');
});

test('a closed link drops its flows: the opener side closes connectees, the target side tells openers', async (t) => {
  const gw = await startPeerGateway(t);
  const [home, laptop, other] = await Promise.all([rawAgent(t, gw, 'home'), rawAgent(t, gw, 'laptop'), rawAgent(t, gw, 'other')]);
  await offerWg(gw, home, ['laptop', 'other']);
  const laptopPeerTag = await openWg(laptop, T);
  await openWg(other, T);
  // The opener goes away for good: home is told its connectee is gone.
  laptop.channel.close('shutting-down', 'test');
  assert.equal((await home.next('datagram-close')).tag, laptopPeerTag);
  await waitFor(() => gw.gateway.peers.flowCounts().udp === 1, 'laptop flow gone');
  // The target goes away for good: its openers get DATAGRAM_CLOSE.
  home.channel.close('shutting-down', 'test');
  assert.equal((await other.next('datagram-close')).tag, T);
  assert.deepEqual(gw.gateway.peers.flowCounts(), { udp: 0, tcp: 0 });
  other.send({ type: 'peer-open', tag: T + 1, transport: 'udp', peer: 'home', service: 'wg' });
  assert.equal((await other.next('peer-open-error')).code, 'peer-offline');
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { dgramSender } from '../../src/gateway/demux.js';
import { StunBindingServer, stunRoute } from '../../src/gateway/stun-server.js';
import type { IceAgent } from '../../src/ice/agent.js';
import { decodeStunDatagram } from '../../src/protocol/stun/index.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { TURN_PASSWORD, TURN_USER, haveCoturn, startCoturn } from '../turn/coturn.js';
import { udpSocket, until } from '../turn/udp.js';
import { reach, udpAgent } from './support/udp-agent.js';
import { loopbackOnly, signalWerift, werift, type WeriftPeer } from './support/werift.js';

/**
 * Proof 2 of issue 6: interop with werift-ice, an independent implementation, in both roles, on
 * host and on relayed candidates (coturn), with datagrams both ways; and RFC 7675 consent
 * failure when werift disappears, on Sluice's hand-moved clock.
 */

async function sluiceStun(t: TestContext) {
  const { socket, local } = await udpSocket(t);
  const route = stunRoute(new StunBindingServer(dgramSender(socket)));
  socket.on('message', (buf, r) => route(buf, { address: r.address, port: r.port }));
  return local;
}

async function datagramsBothWays(agent: IceAgent, peer: WeriftPeer, count = 50): Promise<void> {
  const got: string[] = [];
  agent.channel.onDatagram((d) => got.push(d.toString()));
  for (let i = 0; i < count; i++) {
    assert.ok(agent.channel.send(Buffer.from(`sluice-${i}`)));
    await peer.send(Buffer.from(`werift-${i}`));
  }
  await until(() => got.length === count && peer.got.length === count, `${count} datagrams each way`, 5000);
  assert.deepEqual(got, [...Array(count).keys()].map((i) => `werift-${i}`));
  assert.deepEqual(peer.got.map((b) => b.toString()), [...Array(count).keys()].map((i) => `sluice-${i}`));
}

for (const sluiceRole of ['controlling', 'controlled'] as const) {
  test(`werift-ice on host candidates, Sluice ${sluiceRole}`, { timeout: 30_000 }, async (t) => {
    loopbackOnly(t);
    const stun = await sluiceStun(t);
    const { agent } = await udpAgent(t, { role: sluiceRole, stunServers: [{ address: '127.0.0.1', port: stun.port }] });
    const peer = werift(t, sluiceRole === 'controlled', { stunServer: ['127.0.0.1', stun.port] });
    await signalWerift(agent, peer);
    await Promise.all([peer.conn.connect(), reach(agent, 'connected')]);
    const sel = agent.selectedPair!;
    assert.equal(sel.local.type, 'host');
    assert.equal(sel.remote.type, 'host');
    assert.equal(sel.relayed, false);
    assert.equal(peer.conn.state, 'connected');
    await datagramsBothWays(agent, peer);
  });
}

for (const sluiceRole of ['controlling', 'controlled'] as const) {
  test(`werift-ice on relayed candidates through coturn, Sluice ${sluiceRole}`, { timeout: 40_000 }, async (t) => {
    if (!haveCoturn(t, 'werift relay interop')) return;
    loopbackOnly(t);
    // werift's TURN refresh loop sleeps 5/6 of the lifetime on a timer close() does not cancel; a short
    // lifetime lets the test process exit soon after (and makes both sides refresh in real time).
    const coturn = await startCoturn(t, ['--max-allocate-lifetime=6']);
    const { agent } = await udpAgent(t, {
      role: sluiceRole, policy: 'relay',
      turnServers: [{ server: { address: coturn.address, port: coturn.port }, username: TURN_USER, password: TURN_PASSWORD }],
    });
    const peer = werift(t, sluiceRole === 'controlled', {
      stunServer: ['127.0.0.1', coturn.port], turnServer: ['127.0.0.1', coturn.port], turnUsername: TURN_USER, turnPassword: TURN_PASSWORD, forceTurn: true,
    });
    await signalWerift(agent, peer);
    assert.deepEqual(agent.localCandidates.map((c) => c.type), ['relay']);
    await Promise.all([peer.conn.connect(), reach(agent, 'connected')]);
    const sel = agent.selectedPair!;
    assert.equal(sel.local.type, 'relay');
    assert.equal(sel.remote.type, 'relay');
    assert.equal(sel.relayed, true);
    await datagramsBothWays(agent, peer);
  });
}

test('consent (RFC 7675) both ways with werift; Sluice declares the path dead 30 s after werift disappears', { timeout: 60_000 }, async (t) => {
  loopbackOnly(t);
  const stun = await sluiceStun(t);
  const clock = new ManualClock();
  // Sluice runs on a hand-moved clock; while werift is alive it moves with real time.
  const drive = setInterval(() => clock.advance(10), 10);
  t.after(() => clearInterval(drive));
  const { agent, socket } = await udpAgent(t, { role: 'controlling', clock, stunServers: [{ address: '127.0.0.1', port: stun.port }] });
  const weriftChecks: number[] = [];
  let lastAnswerAt = 0;
  socket.on('message', (buf) => {
    const m = buf[0]! <= 3 ? decodeStunDatagram(buf) : undefined;
    if (m?.cls === 'request') weriftChecks.push(Date.now());
    if (m?.cls === 'success') lastAnswerAt = clock.now(); // answers to Sluice's checks (consent among them)
  });
  const peer = werift(t, false, { stunServer: ['127.0.0.1', stun.port] });
  await signalWerift(agent, peer);
  await Promise.all([peer.conn.connect(), reach(agent, 'connected')]);
  const connectedAt = Date.now();
  // werift checks consent every 4-6 s of real time; it counts an RTT sample only for an answer it accepted.
  const nominated = peer.conn.nominated!;
  const samples = nominated.roundTripTimeMeasurements;
  await until(() => weriftChecks.some((at) => at > connectedAt + 1000), 'a consent check from werift', 8000);
  await until(() => nominated.roundTripTimeMeasurements > samples, 'werift accepting Sluice\'s consent answer', 2000);
  assert.equal(peer.conn.state, 'connected');
  // And Sluice's own consent checks get answers: 20 s of Sluice's time, still connected.
  clearInterval(drive);
  for (let i = 0; i < 400; i++) {
    clock.advance(50);
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.equal(agent.state, 'connected');

  await peer.conn.close();
  const seen: { state: string; at: number }[] = [];
  agent.on('state', (s) => seen.push({ state: s, at: clock.now() }));
  const closedAt = clock.now();
  const state = () => agent.state;
  for (let i = 0; i < 800 && state() !== 'failed'; i++) {
    clock.advance(50);
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(seen.map((s) => s.state), ['disconnected', 'failed']);
  const failedAfter = seen[1]!.at - lastAnswerAt;
  assert.ok(lastAnswerAt <= closedAt && closedAt - lastAnswerAt <= 6000, 'the last answer came within one check interval before the close');
  // RFC 7675: consent expires 30 s after the last answer (50 ms is the clock's step here).
  assert.ok(failedAfter >= 30_000 && failedAfter <= 30_050, `failed ${failedAfter} ms after the last answer`);
  assert.equal(agent.channel.send(Buffer.from('x')), false);
});

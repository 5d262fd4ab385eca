import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { SluiceError } from '../../src/core/errors.js';
import { StreamResetError, type TunnelStream } from '../../src/upstream/agent/tunnel-stream.js';
import { waitFor } from '../helpers/net.js';
import { rawAgent, startPeerGateway, type RawAgent } from './peer-helpers.js';

const ANY = { address: '0.0.0.0', port: 0, family: 4 as const };

async function setup(t: import('node:test').TestContext) {
  const gw = await startPeerGateway(t);
  const [home, laptop] = await Promise.all([rawAgent(t, gw, 'home'), rawAgent(t, gw, 'laptop')]);
  home.send({ type: 'offer', serviceId: 2, name: 'ssh', transport: 'tcp', peers: ['laptop'] });
  await waitFor(() => gw.gateway.peers.offers(gw.gateway.agent('home')!).size === 1, 'offer stored');
  return { gw, home, laptop };
}

/** laptop opens a stream to home's `service` the way an agent does: PEER_OPEN just before STREAM_OPEN. */
function openPeerStream(laptop: RawAgent, service = 'ssh'): Promise<TunnelStream> {
  return laptop.mux.open(0, ANY, ANY, 5000, new AbortController().signal, (id) =>
    laptop.send({ type: 'peer-open', tag: id, transport: 'tcp', peer: 'home', service }),
  );
}

function collect(s: TunnelStream): { text: () => string; ended: Promise<unknown> } {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return { text: () => Buffer.concat(chunks).toString(), ended: once(s, 'end') };
}

test('a TCP peer stream: the target gets STREAM_OPEN for its service, bytes flow both ways, half-close both ways', async (t) => {
  const { gw, home, laptop } = await setup(t);
  const opening = openPeerStream(laptop);
  const { stream: atHome, m } = await home.nextOpened();
  assert.equal(m.serviceId, 2);
  assert.deepEqual(m.client, gw.gateway.agent('laptop')!.remote);
  assert.deepEqual(m.server, gw.gateway.tcpAddress);
  home.mux.accept(atHome);
  const atLaptop = await opening;
  const fromLaptop = collect(atHome);
  const fromHome = collect(atLaptop);
  atLaptop.write('hello ');
  atHome.write('world');
  // laptop half-closes; home can still send.
  atLaptop.end('from laptop');
  await fromLaptop.ended;
  assert.equal(fromLaptop.text(), 'hello from laptop');
  atHome.write(', and more');
  atHome.end();
  await fromHome.ended;
  assert.equal(fromHome.text(), 'world, and more');
  await waitFor(() => gw.gateway.peers.flowCounts().tcp === 0, 'relayed stream finished');
  const c = gw.gateway.counters;
  assert.deepEqual(c.peerFlows.tcp, { ok: 1 });
  assert.deepEqual([c.peerStreamBytesToService, c.peerStreamBytesToOpener], [17, 15]);
});

test('a reset on either side resets the other', async (t) => {
  const { gw, home, laptop } = await setup(t);
  for (const resetter of ['laptop', 'home'] as const) {
    const opening = openPeerStream(laptop);
    const { stream: atHome } = await home.nextOpened();
    home.mux.accept(atHome);
    const atLaptop = await opening;
    const [victim, culprit] = resetter === 'laptop' ? [atHome, atLaptop] : [atLaptop, atHome];
    const failed = once(victim, 'error');
    culprit.reset('cancel');
    const [err] = await failed;
    assert.ok(err instanceof StreamResetError);
    assert.equal(err.resetCode, 'cancel');
  }
  await waitFor(() => gw.gateway.peers.flowCounts().tcp === 0, 'flows gone');
});

test('TCP peer refusals: PEER_OPEN refused -> PEER_OPEN_ERROR and the stream is reset refused; the target refusing resets it too', async (t) => {
  const { gw, home, laptop } = await setup(t);
  const resetCode = async (p: Promise<TunnelStream>) => {
    const err = await p.then(
      () => assert.fail('the stream opened'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SluiceError);
    return (err.cause as StreamResetError).resetCode;
  };
  // Not offered to laptop under that name.
  assert.equal(await resetCode(openPeerStream(laptop, 'telnet')), 'refused');
  const e = await laptop.next('peer-open-error');
  assert.equal(e.code, 'not-allowed');
  assert.equal(e.tag % 2, 1);
  // No PEER_OPEN at all.
  assert.equal(await resetCode(laptop.mux.open(0, ANY, ANY, 5000, new AbortController().signal)), 'refused');
  // The target refuses (ECONNREFUSED at its service), or cannot dial.
  for (const [code, expected] of [['refused', 'refused'], ['timeout', 'dial-failed']] as const) {
    const opening = openPeerStream(laptop);
    const { stream } = await home.nextOpened();
    stream.reset(code);
    assert.equal(await resetCode(opening), expected);
  }
  assert.equal(home.opened.length, 0);
  assert.deepEqual(gw.gateway.counters.peerFlows.tcp, { 'not-allowed': 1, refused: 1, 'dial-failed': 1 });
  assert.deepEqual(gw.gateway.peers.flowCounts(), { udp: 0, tcp: 0 });
});

test('a relayed stream ends when the target link closes', async (t) => {
  const { gw, home, laptop } = await setup(t);
  const opening = openPeerStream(laptop);
  const { stream: atHome } = await home.nextOpened();
  home.mux.accept(atHome);
  const atLaptop = await opening;
  const failed = once(atLaptop, 'error');
  home.channel.close('shutting-down', 'test');
  const [err] = await failed;
  assert.ok(err instanceof StreamResetError);
  await waitFor(() => gw.gateway.peers.flowCounts().tcp === 0, 'flow gone');
});

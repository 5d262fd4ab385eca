import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { waitFor } from '../helpers/net.js';
import { parseConfig } from '../../src/config/load.js';
import { TOKEN } from '../gateway/expose-helpers.js';
import { TURN_PASSWORD, TURN_USER, haveCoturn, startCoturn } from '../turn/coturn.js';
import { connected, peerAgentConfig, peerGatewayConfig, startAgent, startGateway, udpClient, udpEcho } from './connect-helpers.js';

const state = mkdtempSync(join(tmpdir(), 'sluice-connect-'));
process.once('exit', () => rmSync(state, { recursive: true, force: true }));

async function setup(t: import('node:test').TestContext, path: 'auto' | 'direct' | 'relay', extraHome = '') {
  const gw = await startGateway(t, peerGatewayConfig(state));
  const echo = await udpEcho(t);
  const home = await startAgent(t, peerAgentConfig(gw, 'home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop] }\n${extraHome}`));
  const laptop = await startAgent(
    t,
    peerAgentConfig(gw, 'laptop', `  peerIdleTimeout: 3s\n  connect:\n    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0, path: ${path} }\n`),
  );
  await connected(home.agent);
  await connected(laptop.agent);
  const listen = laptop.agent.connectRoutes[0]!.local.port;
  return { gw, echo, home, laptop, listen };
}

test('a lazy connect listener: idle until the first datagram, which is answered; the path ends direct', async (t) => {
  const { gw, laptop, home, listen, echo } = await setup(t, 'auto');
  assert.equal(laptop.agent.peers.links.size, 0, 'no peer link before traffic');
  const c = await udpClient(t);
  const started = Date.now();
  c.send('d0', listen);
  await waitFor(() => c.got.includes('d0'), 'first reply', 5000);
  const firstReplyMs = Date.now() - started;
  const link = laptop.agent.peers.links.get('home')!;
  await waitFor(() => link.path === 'direct', 'direct path', 10_000);
  for (let i = 1; i < 50; i++) {
    c.send(`d${i}`, listen);
    await new Promise((r) => setTimeout(r, 10));
  }
  await waitFor(() => c.got.length >= 50, 'all replies', 5000);
  assert.deepEqual([...c.got].sort(), Array.from({ length: 50 }, (_, i) => `d${i}`).sort());
  assert.equal(echo.seen.length, 50, 'every datagram reached the service once');
  const flow = laptop.agent.peers.flows[0]!;
  assert.ok(flow.counters.direct > 0, `some datagrams went direct: ${JSON.stringify(flow.counters)}`);
  assert.ok(flow.counters.relayed >= 1, 'the first went by the relay');
  assert.ok(gw.gateway.counters.signalsForwarded > 0);
  assert.ok(firstReplyMs < 5000);
  const events = laptop.seen.filter((e) => e.type === 'peer-path').map((e) => (e.type === 'peer-path' ? `${e.state}/${e.path}` : ''));
  assert.ok(events.includes('connecting/relayed'), events.join(','));
  assert.ok(events.includes('connected/direct'), events.join(','));
  assert.equal(link.diagnosis().reason, undefined);
  // A peer may only use its own flows' tags on the direct path: a forged tag is refused, not delivered.
  const refusedBefore = home.agent.peers.counters.directRefused;
  assert.ok(link.sendDirect(flow.peerTag + 1, Buffer.from('forged')));
  await waitFor(() => home.agent.peers.counters.directRefused > refusedBefore, 'forged tag refused', 3000);
  assert.ok(!echo.seen.includes('forged'));
  // ICE ran on the agent's gateway socket: its host candidate is the address the gateway sees for
  // the agent's tunnel datagrams (no NAT on loopback, so the STUN-mapped address is the same).
  const seen = gw.gateway.agent('laptop')!.udpAddress!;
  assert.ok(link.diagnosis().localCandidates.includes(`host 127.0.0.1:${seen.port}`), `${JSON.stringify(seen)} vs ${link.diagnosis().localCandidates.join(', ')}`);
});

test('path: relay never runs ICE; every datagram goes through the gateway', async (t) => {
  const { laptop, listen, gw } = await setup(t, 'relay');
  const c = await udpClient(t);
  for (let i = 0; i < 20; i++) c.send(`r${i}`, listen);
  await waitFor(() => c.got.length >= 20, 'replies', 5000);
  const flow = laptop.agent.peers.flows[0]!;
  assert.equal(flow.counters.direct, 0);
  assert.equal(flow.counters.relayed, 20);
  assert.equal(laptop.agent.peers.links.get('home')!.path, 'relayed');
  assert.equal(laptop.agent.peers.links.get('home')!.diagnosis().reason, 'path: relay is configured');
  assert.equal(gw.gateway.counters.signalsForwarded, 0);
});

test('an agent the exposing side does not name is refused, and the session ends', async (t) => {
  const gw = await startGateway(t, peerGatewayConfig(state));
  const echo = await udpEcho(t);
  const home = await startAgent(t, peerAgentConfig(gw, 'home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop] }\n`));
  const other = await startAgent(t, peerAgentConfig(gw, 'other', `  connect:\n    x: { peer: home, service: wg, listen: udp://127.0.0.1:0 }\n`));
  await connected(home.agent);
  await connected(other.agent);
  const c = await udpClient(t);
  c.send('nope', other.agent.connectRoutes[0]!.local.port);
  await waitFor(() => other.agent.peers.counters.flowsRefused === 1, 'refused', 5000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(echo.seen.length, 0);
  assert.deepEqual(c.got, []);
  assert.equal(other.agent.peers.links.get('home')!.lastRefusal, 'not-allowed');
});

test('after peerIdleTimeout without traffic the link goes back to idle; the next datagram brings it back', async (t) => {
  const { laptop, listen } = await setup(t, 'auto');
  const c = await udpClient(t);
  c.send('a', listen);
  await waitFor(() => c.got.length === 1, 'reply', 5000);
  const link = laptop.agent.peers.links.get('home')!;
  await waitFor(() => link.state === 'idle', 'idle', 8000);
  c.send('b', listen);
  await waitFor(() => c.got.length === 2, 'reply after idle', 5000);
  assert.notEqual(link.state, 'idle');
});

test('TCP through a connect listener rides the gateway relay: bytes both ways and half-close', async (t) => {
  const gw = await startGateway(t, peerGatewayConfig(state));
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => s.end(Buffer.concat([Buffer.from('echo:'), ...chunks])));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const home = await startAgent(t, peerAgentConfig(gw, 'home', `  expose:\n    ssh: { local: 127.0.0.1:${port}, transport: tcp, peers: [laptop] }\n`));
  const laptop = await startAgent(t, peerAgentConfig(gw, 'laptop', `  connect:\n    home-ssh: { peer: home, service: ssh, listen: tcp://127.0.0.1:0 }\n`));
  await connected(home.agent);
  await connected(laptop.agent);
  const c = net.connect(laptop.agent.connectRoutes[0]!.local.port, '127.0.0.1');
  const got: Buffer[] = [];
  c.on('data', (d) => got.push(d));
  await once(c, 'connect');
  const big = Buffer.alloc(300_000, 7);
  c.end(big);
  await once(c, 'end');
  const all = Buffer.concat(got);
  assert.equal(all.subarray(0, 5).toString(), 'echo:');
  assert.ok(all.subarray(5).equals(big), `got ${all.length - 5} bytes back`);
  assert.ok(gw.gateway.counters.peerStreamBytesToService >= big.length || gw.gateway.counters.peerFlows.tcp['opened'] !== undefined);
});

test('a dead direct path: traffic falls back to the relay within the silence bound, and returns to direct', async (t) => {
  const { laptop, home, listen } = await setup(t, 'auto');
  const c = await udpClient(t);
  c.send('w', listen);
  await waitFor(() => c.got.length === 1, 'reply', 5000);
  const link = laptop.agent.peers.links.get('home')!;
  await waitFor(() => link.path === 'direct', 'direct', 10_000);
  // Home stops taking anything from peers on its gateway socket: the direct path is a black hole.
  const peers = home.agent.peers;
  const ingress = peers.ingress.bind(peers);
  let dead = true;
  peers.ingress = (buf, from) => (dead ? true : ingress(buf, from));
  const sent: string[] = [];
  for (let i = 0; i < 250; i++) {
    sent.push(`s${i}`);
    c.send(`s${i}`, listen);
    await new Promise((r) => setTimeout(r, 20));
    if (i === 200) dead = false;
  }
  await waitFor(() => link.path === 'direct', 'direct again', 10_000);
  await new Promise((r) => setTimeout(r, 300));
  const answered = sent.filter((s) => c.got.includes(s));
  const lost = sent.length - answered.length;
  // Datagrams go on both paths once the last ack is DIRECT_DOUBT_MS old, so only those sent in the
  // first ~0.6-0.85 s of the black hole are lost (at 20 ms each, about 30-45; the bound leaves room for a loaded run).
  t.diagnostic(`lost ${lost} of ${sent.length} across the black hole; switches ${link.counters.switches}`);
  assert.ok(lost <= 75, `lost ${lost}`);
  assert.ok(answered.includes('s150') && answered.includes('s199'), 'datagrams after the fallback were answered over the relay');
  assert.ok(answered.includes('s249'));
  assert.ok(link.counters.switches >= 3, JSON.stringify(link.counters));
});

test('TURN servers in the config are ICE candidates: with icePolicy relay the path goes through coturn', async (t) => {
  if (!haveCoturn(t, 'connect over coturn')) return;
  const turn = await startCoturn(t);
  const turnYaml = `  icePolicy: relay\n  turnServers: [{ server: 127.0.0.1:${turn.port}, username: ${TURN_USER}, password: ${TURN_PASSWORD} }]\n`;
  const gw = await startGateway(t, peerGatewayConfig(state));
  const echo = await udpEcho(t);
  const home = await startAgent(t, peerAgentConfig(gw, 'home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop] }\n${turnYaml}`));
  const laptop = await startAgent(t, peerAgentConfig(gw, 'laptop', `  connect:\n    w: { peer: home, service: wg, listen: udp://127.0.0.1:0 }\n${turnYaml}`));
  await connected(home.agent);
  await connected(laptop.agent);
  const c = await udpClient(t);
  const listen = laptop.agent.connectRoutes[0]!.local.port;
  c.send('t0', listen);
  await waitFor(() => c.got.includes('t0'), 'first reply', 5000);
  const link = laptop.agent.peers.links.get('home')!;
  await waitFor(() => link.directUsable, 'ICE over TURN', 15_000);
  for (let i = 1; i <= 20; i++) c.send(`t${i}`, listen);
  await waitFor(() => c.got.length >= 21, 'replies', 5000);
  const d = link.diagnosis();
  assert.ok(d.selected?.includes('relay') && d.selected.endsWith('(TURN)'), d.selected);
  assert.ok(d.localCandidates.every((c) => c.startsWith('relay ')), d.localCandidates.join(', '));
  assert.equal(link.path, 'relayed');
  assert.match(d.reason ?? '', /icePolicy: relay/);
  assert.ok(laptop.agent.peers.flows[0]!.counters.direct >= 20, 'the datagrams took the ICE channel');
});

test('control-channel reconnects of either agent mid-stream: the stream goes on', async (t) => {
  for (const path of ['auto', 'relay'] as const) {
    const { laptop, home, listen } = await setup(t, path);
    const c = await udpClient(t);
    const sent: string[] = [];
    for (let i = 0; i < 120; i++) {
      sent.push(`${path}${i}`);
      c.send(`${path}${i}`, listen);
      await new Promise((r) => setTimeout(r, 20));
      if (i === 30) laptop.agent.reconnectNow();
      if (i === 70) home.agent.reconnectNow();
    }
    await new Promise((r) => setTimeout(r, 500));
    const lost = sent.filter((s) => !c.got.includes(s));
    t.diagnostic(`path ${path}: lost ${lost.length} of 120 across two reconnects: ${lost.join(' ')}`);
    assert.ok(lost.length <= 20, `lost ${lost.join(' ')}`);
    assert.ok(c.got.includes(`${path}119`), 'the last one was answered');
  }
});

test('peerCandidates public (the default): loopback candidates, signalled or peer-reflexive, are never checked; the relay carries the flow', async (t) => {
  const gw = await startGateway(t, peerGatewayConfig(state));
  const echo = await udpEcho(t);
  const strip = (c: ReturnType<typeof peerAgentConfig>) => ({ ...c, peerCandidates: ['public' as const] });
  const home = await startAgent(t, strip(peerAgentConfig(gw, 'home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop] }\n`)));
  const laptop = await startAgent(t, strip(peerAgentConfig(gw, 'laptop', `  directRetry: 1h\n  connect:\n    w: { peer: home, service: wg, listen: udp://127.0.0.1:0 }\n`)));
  await connected(home.agent);
  await connected(laptop.agent);
  const c = await udpClient(t);
  const listen = laptop.agent.connectRoutes[0]!.local.port;
  for (let i = 0; i < 10; i++) c.send(`p${i}`, listen);
  await waitFor(() => c.got.length === 10, 'replies over the relay', 5000);
  const link = laptop.agent.peers.links.get('home')!;
  await waitFor(() => link.diagnosis().skippedCandidates.length > 0, 'candidates skipped', 5000);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(link.path, 'relayed');
  assert.deepEqual(link.diagnosis().pairs, [], 'no pair was formed with a loopback address');
  assert.ok(link.diagnosis().skippedCandidates.every((s) => s.endsWith('(loopback)')), link.diagnosis().skippedCandidates.join(', '));
  assert.equal(laptop.agent.peers.flows[0]!.counters.direct, 0);
  const homeLink = home.agent.peers.links.get('laptop')!;
  assert.deepEqual(homeLink.diagnosis().pairs, []);
});

test('several clients through one connect listener: one session each at the exposing agent, replies to their own client', async (t) => {
  for (const path of ['relay', 'auto', 'direct'] as const) {
    const { listen, echo, home } = await setup(t, path);
    const clients = await Promise.all([udpClient(t), udpClient(t), udpClient(t)]);
    for (let round = 0; round < 30; round++) {
      clients.forEach((c, i) => c.send(`${path}-c${i}-${round}`, listen));
      await new Promise((r) => setTimeout(r, 15));
    }
    await waitFor(() => clients.every((c) => c.got.length >= 30), `${path}: all replies`, 10_000);
    clients.forEach((c, i) => assert.deepEqual(c.got.sort(), Array.from({ length: 30 }, (_, r) => `${path}-c${i}-${r}`).sort(), `${path}: client ${i} got only its own`));
    assert.equal(echo.seen.filter((s) => s.startsWith(`${path}-`)).length, 90);
    assert.equal(home.agent.local.services[0]!.table!.size, 3, `${path}: three sessions at home`);
  }
});

test('the peer offline at first: the flow is refused (peer-offline), and once it is up the next datagram connects, direct within seconds', async (t) => {
  const gw = await startGateway(t, peerGatewayConfig(state));
  const echo = await udpEcho(t);
  const laptop = await startAgent(t, peerAgentConfig(gw, 'laptop', `  connect:\n    w: { peer: home, service: wg, listen: udp://127.0.0.1:0 }\n`));
  await connected(laptop.agent);
  const c = await udpClient(t);
  const listen = laptop.agent.connectRoutes[0]!.local.port;
  c.send('early', listen);
  await waitFor(() => laptop.agent.peers.counters.flowsRefused === 1, 'refused while home is offline', 5000);
  const link = laptop.agent.peers.links.get('home')!;
  assert.equal(link.lastRefusal, 'peer-offline');
  const home = await startAgent(t, peerAgentConfig(gw, 'home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop] }\n`));
  await connected(home.agent);
  await new Promise((r) => setTimeout(r, 200)); // home has spoken since AUTH_OK: reachable at the gateway
  c.send('later', listen);
  await waitFor(() => c.got.includes('later'), 'answered once home is up', 5000);
  await waitFor(() => link.path === 'direct', 'direct well before directRetry (30 s)', 8000);
  assert.deepEqual(c.got, ['later']);
});

test('path: direct where no direct path can form: datagrams are held (bounded), never relayed, and the reason says why', async (t) => {
  const gw = await startGateway(t, peerGatewayConfig(state));
  const echo = await udpEcho(t);
  const publicOnly = (c: ReturnType<typeof peerAgentConfig>) => ({ ...c, peerCandidates: ['public' as const] });
  const home = await startAgent(t, publicOnly(peerAgentConfig(gw, 'home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop] }\n`)));
  const laptop = await startAgent(t, publicOnly(peerAgentConfig(gw, 'laptop', `  connect:\n    w: { peer: home, service: wg, listen: udp://127.0.0.1:0, path: direct }\n`)));
  await connected(home.agent);
  await connected(laptop.agent);
  const c = await udpClient(t);
  const listen = laptop.agent.connectRoutes[0]!.local.port;
  c.send('h0', listen);
  await waitFor(() => laptop.agent.peers.flows.length === 1, 'the flow exists', 3000);
  for (let i = 1; i < 300; i++) {
    c.send(`h${i}`, listen);
    if (i % 50 === 0) await new Promise((r) => setTimeout(r, 20));
  }
  const link = laptop.agent.peers.links.get('home')!;
  await waitFor(() => laptop.agent.peers.flows[0]!.counters.queuedDropped === 300 - 256, 'the flow holds 256 and drops the rest', 5000).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(laptop.agent.peers.flows[0]!.counters)}, held ${laptop.agent.peers.flows[0]!.queue.length}`);
  });
  await waitFor(() => (link.diagnosis().skippedCandidates.length > 0), 'candidates skipped', 5000);
  await new Promise((r) => setTimeout(r, 500));
  const flow = laptop.agent.peers.flows[0]!;
  assert.equal(flow.counters.relayed, 0, 'a pinned-direct flow never takes the relay');
  assert.equal(flow.queue.length, 256);
  assert.deepEqual(echo.seen, []);
  assert.deepEqual(c.got, []);
  assert.notEqual(link.path, 'direct');
  assert.ok(link.diagnosis().reason, 'a reason is given');
});

test('IPv6: a gateway on [::1], agents and listeners on ::1; the path ends direct over IPv6', async (t) => {
  const gwc = parseConfig(`gateway:\n  listen: "[::1]:0"\n  stateDir: ${state}\n  agents:\n    home: { token: "${TOKEN}" }\n    laptop: { token: "${TOKEN}" }\n  ports: 1024-65535\n`);
  assert.ok(gwc.ok, JSON.stringify(!gwc.ok && gwc.issues));
  const gw = await startGateway(t, gwc.config.gateway!);
  const echo = dgram.createSocket('udp6');
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  echo.bind(0, '::1');
  await once(echo, 'listening');
  t.after(() => echo.close());
  const agent = (name: string, body: string) => {
    const r = parseConfig(`agent:\n  name: ${name}\n  gateway: "[::1]:${gw.port}"\n  token: "${TOKEN}"\n  fingerprint: ${gw.fingerprint}\n  peerCandidates: [loopback]\n${body}`);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
    return r.config.agent!;
  };
  const home = await startAgent(t, agent('home', `  expose:\n    wg: { local: "[::1]:${echo.address().port}", peers: [laptop] }\n`));
  const laptop = await startAgent(t, agent('laptop', `  connect:\n    w: { peer: home, service: wg, listen: "udp://[::1]:0" }\n`));
  await connected(home.agent);
  await connected(laptop.agent);
  const c = dgram.createSocket('udp6');
  const got: string[] = [];
  c.on('message', (m) => got.push(m.toString()));
  c.bind(0, '::1');
  await once(c, 'listening');
  t.after(() => c.close());
  const listen = laptop.agent.connectRoutes[0]!.local.port;
  for (let i = 0; i < 20; i++) {
    c.send(`v${i}`, listen, '::1');
    await new Promise((r) => setTimeout(r, 40));
  }
  await waitFor(() => got.length === 20, 'all replies', 5000);
  const link = laptop.agent.peers.links.get('home')!;
  await waitFor(() => link.path === 'direct', 'direct', 5000);
  assert.match(link.diagnosis().selected ?? '', /^host ::1:\d+ <-> host ::1:\d+$/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { decodeProxyDatagram } from '../../src/protocol/proxy-protocol/index.js';
import { freePort, sleep, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { agentConfig, gatewayConfig, middlebox, published, startAgent, startGateway } from './expose-helpers.js';

const KEEPALIVE = '  keepaliveInterval: 100ms\n  resumeGrace: 5s\n';

/** Gateway, an on-path box, an agent behind the box exposing a UDP echo. */
async function setup(t: import('node:test').TestContext, expose = '') {
  const echo = await udpEcho(t);
  const gw = await startGateway(t, gatewayConfig(KEEPALIVE));
  const box = await middlebox(t, gw.port);
  const port = await freePort('udp');
  const { agent, seen } = await startAgent(
    t,
    agentConfig({ port: box.port, fingerprint: gw.fingerprint }, `    echo: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:${port}${expose} }`),
  );
  await published(agent);
  await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');
  const client = await udpClient(t);
  return { echo, gw, box, agent, port, client, agentEvents: seen };
}

/** Sends `n` datagrams, one every `gapMs`, and returns the set of answers received. */
async function roundTrips(client: Awaited<ReturnType<typeof udpClient>>, port: number, prefix: string, n: number, gapMs = 3) {
  for (let i = 0; i < n; i++) {
    client.send(port, `${prefix}${i}`);
    await sleep(gapMs);
  }
  const got = new Set<string>();
  try {
    while (got.size < n) got.add((await client.next(1000)).toString());
  } catch {
    /* counted below */
  }
  return got;
}

test('a forged keepalive from another address is ignored; so is a replayed one', async (t) => {
  const { gw, box, client, port } = await setup(t);
  assert.equal((await roundTrips(client, port, 'a', 20)).size, 20);
  const link = gw.gateway.agent('home')!;
  const before = { ...link.udpAddress! };
  const attacker = dgram.createSocket('udp4');
  attacker.bind(0, '127.0.0.1');
  await once(attacker, 'listening');
  t.after(() => attacker.close());
  // Forged: the right key id and type, garbage where the AEAD tag should verify.
  const forged = Buffer.alloc(36);
  forged[0] = 0x0d;
  forged.writeUInt32BE(link.currentKeyId, 2);
  forged.writeUIntBE(2 ** 40, 10, 6);
  // Replayed: a real keepalive the box saw, sent again from the attacker's address.
  const real = box.upstream.filter((d) => d[0] === 0x0d).at(-1)!;
  const rejected = gw.gateway.counters.datagramRejected;
  const [authFailed, replayed] = [rejected['auth-failed'], rejected.replayed];
  for (let i = 0; i < 5; i++) {
    attacker.send(forged, gw.port, '127.0.0.1');
    attacker.send(real, gw.port, '127.0.0.1');
  }
  await waitFor(() => rejected['auth-failed'] >= authFailed + 5 && rejected.replayed >= replayed + 5, 'rejections counted');
  assert.deepEqual(link.udpAddress, before, 'the agent address did not move');
  assert.equal((await roundTrips(client, port, 'b', 20)).size, 20, 'the flow is untouched');
});

test('the agent address moves on an authenticated datagram from a new address (NAT rebinding)', async (t) => {
  const { gw, box, client, port } = await setup(t);
  const link = gw.gateway.agent('home')!;
  assert.equal((await roundTrips(client, port, 'a', 10)).size, 10);
  const first = link.udpAddress!.port;
  // Re-bind the box's gateway-facing socket: the "NAT" now maps the agent to a new port.
  box.rebind = true;
  await waitFor(() => link.udpAddress!.port !== first, 'address moved by a keepalive', 3000);
  assert.equal((await roundTrips(client, port, 'b', 20)).size, 20);
  assert.ok(gw.gateway.counters.agentAddressMoves >= 1);
});

test('UDP blocked: datagrams fall back to the TLS connection, and return to UDP when it works again', async (t) => {
  const { gw, box, agent, client, port } = await setup(t);
  assert.equal((await roundTrips(client, port, 'a', 20)).size, 20);
  box.blocked = true;
  await waitFor(() => agent.datagramMode === 'tls', 'agent falls back', 3000);
  await sleep(350); // the gateway's view of the agent's address goes stale after three intervals
  const overTlsBefore = gw.gateway.counters.datagramsToAgentOverTls;
  assert.equal((await roundTrips(client, port, 'b', 50)).size, 50, 'every datagram delivered over TLS');
  assert.ok(gw.gateway.counters.datagramsToAgentOverTls >= overTlsBefore + 50);
  assert.ok(agent.datagramCounters.toGatewayOverTls >= 50);
  box.blocked = false;
  await waitFor(() => agent.datagramMode === 'udp', 'agent back on UDP', 3000);
  const udpBefore = gw.gateway.counters.datagramsToAgent;
  assert.equal((await roundTrips(client, port, 'c', 50)).size, 50);
  // Sessions forwarded in the native batch reach the counters on the next sweep (docs/datapath.md).
  await waitFor(() => gw.gateway.counters.datagramsToAgent >= udpBefore + 50, 'back over UDP', 2000);
});

test('a control-channel outage keeps UDP sessions; the agent reconnects, is resumed and re-publishes', async (t) => {
  const { gw, box, agent, client, port, echo } = await setup(t);
  assert.equal((await roundTrips(client, port, 'a', 10)).size, 10);
  box.cutTcp();
  // During the outage and the reconnect, datagrams keep flowing over UDP with the old keys.
  assert.equal((await roundTrips(client, port, 'b', 100, 5)).size, 100);
  await waitFor(() => agent.counters.resumed === 1 && agent.state === 'connected', 'resumed');
  await published(agent);
  assert.equal(gw.gateway.counters.authResumed, 1);
  assert.equal((await roundTrips(client, port, 'c', 50)).size, 50);
  assert.equal(echo.sources.size, 1, 'one agent session toward the local service all along');
});

test('failed reconnects during an outage do not take the working UDP flow down', async (t) => {
  const { gw, box, agent, client, port } = await setup(t);
  // A second gateway with the same certificate that knows no agents: every attempt passes the
  // pin and TLS (so the agent prepares new keys), then fails with unknown-agent.
  const stranger = await startGateway(t, { ...gatewayConfig(KEEPALIVE), agents: new Map() });
  box.tcpTarget = stranger.port;
  box.cutTcp();
  await waitFor(() => (agent.counters.refused['unknown-agent'] ?? 0) >= 3, 'three failed attempts', 5000);
  assert.equal((await roundTrips(client, port, 'x', 50)).size, 50, 'UDP still flows on the old keys');
  box.tcpTarget = gw.port;
  await waitFor(() => agent.counters.resumed === 1, 'resumed on the real gateway', 5000);
  assert.equal((await roundTrips(client, port, 'y', 20)).size, 20);
});

test('the gateway restarts: the agent backs off, reconnects and re-publishes the same port', async (t) => {
  const echo = await udpEcho(t);
  const cfg = gatewayConfig(KEEPALIVE);
  const gw = await startGateway(t, cfg);
  const port = await freePort('udp');
  const { agent, rec } = await startAgent(t, agentConfig(gw, `    echo: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:${port} }`));
  await published(agent);
  await gw.gateway.close();
  await waitFor(() => rec.of('agent-disconnected').length >= 2, 'agent retrying');
  const again = await startGateway(t, { ...cfg, listen: { host: '127.0.0.1', port: gw.port } });
  await waitFor(() => agent.counters.connects === 2, 'reconnected', 5000);
  for (const s of agent.services()) s.bound = undefined;
  await waitFor(() => again.gateway.agent('home')?.services.size === 1, 're-published');
  const client = await udpClient(t);
  await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');
  assert.equal((await roundTrips(client, port, 'x', 20)).size, 20);
  assert.equal(agent.counters.resumed, 0, 'a new gateway has nothing to resume');
});

test('proxyProtocol v2 on UDP puts the real client in front of each datagram to the local service', async (t) => {
  const service = dgram.createSocket('udp4');
  service.bind(0, '127.0.0.1');
  await once(service, 'listening');
  t.after(() => service.close());
  const headers: Buffer[] = [];
  service.on('message', (m, r) => {
    headers.push(m);
    const { length } = decodeProxyDatagram(m, {});
    service.send(m.subarray(length), r.port, r.address);
  });
  const gw = await startGateway(t, gatewayConfig(KEEPALIVE));
  const port = await freePort('udp');
  const { agent } = await startAgent(t, agentConfig(gw, `    dns: { local: 127.0.0.1:${service.address().port}, remote: udp://127.0.0.1:${port}, proxyProtocol: v2 }`));
  await published(agent);
  const client = await udpClient(t);
  client.send(port, 'q1');
  assert.equal((await client.next()).toString(), 'q1');
  const { header } = decodeProxyDatagram(headers[0]!, {});
  assert.equal(header.version === 2 && header.addresses?.source.port, client.port);
  assert.equal(header.version === 2 && header.addresses?.destination.port, port);
});

test('idle sessions end on both sides: the agent closes its tag, a new datagram gets a new session', async (t) => {
  const { gw, agent, client, port, echo } = await setup(t, ', udp: { idleTimeout: 300ms }');
  assert.equal((await roundTrips(client, port, 'a', 5)).size, 5);
  await waitFor(() => agent.local.tagCount === 0, 'agent session idled out and its tag closed', 3000);
  assert.equal((await roundTrips(client, port, 'b', 5)).size, 5, 'a new tag, with an origin, works');
  assert.equal(echo.sources.size, 2, 'a second agent session toward the service');
  void gw;
});

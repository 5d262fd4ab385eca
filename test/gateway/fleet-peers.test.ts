import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/core/clock.js';
import { parseRedisUrl } from '../../src/config/redis-url.js';
import { Fleet } from '../../src/fleet/fleet.js';
import { EventStream } from '../../src/observe/events.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { PENDING_OPEN_MS } from '../../src/gateway/fleet-peers.js';
import { fleetBus, type FleetPeers } from '../../src/gateway/fleet-peers.js';
import { tempDir } from '../helpers/peers.js';
import { waitFor } from '../helpers/net.js';
import { startRedis, type RedisPeer } from '../helpers/redis.js';
import { peerAgentConfig, peerGatewayConfig, startAgent, startGateway, udpClient, udpEcho } from '../connect/connect-helpers.js';

/**
 * The bridge (src/gateway/fleet-peers.ts) on a real fleet: a real redis-server, each gateway a
 * fleet member (Fleet.start: registration and agent presence), agents homed on one gateway each.
 */
async function join(t: TestContext, redis: RedisPeer, name: string, gw: Awaited<ReturnType<typeof startGateway>>): Promise<FleetPeers> {
  const fleet = await member(t, redis, name, gw.port, gw.events, () => gw.gateway.agents().filter((l) => l.state === 'attached').map((l) => l.name));
  return gw.gateway.joinFleet(fleetBus(fleet));
}

/** A fleet member (registration and presence of `agents`) on the real redis-server. */
async function member(t: TestContext, redis: RedisPeer, name: string, port: number, events: EventStream, agents: () => string[]): Promise<Fleet> {
  const target = parseRedisUrl(redis.url);
  if (typeof target === 'string') throw new Error(target);
  const ac = new AbortController();
  const fleet = await Fleet.start(
    { name, redis: target, keyPrefix: 'sluice:', heartbeatMs: 200, ttlMs: 1000, onRedisDown: 'local', publicAddresses: [`127.0.0.1:${port}`], limits: { maxPerSource: 0, ratePerSource: 0, rateWindowMs: 1000 } },
    {
      clock: systemClock,
      events,
      version: 'test',
      local: { agentPort: () => port, agents, load: () => ({ agents: 0, sessions: 0 }) },
      warn: () => {},
      connectWaitMs: 2000,
    },
    ac.signal,
  );
  t.after(() => fleet.close());
  return fleet;
}

test('two agents on two gateways with no common one reach each other through a connect listener: relayed through Redis, then direct', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const state = await tempDir(t, 'sluice-fleet-peers-');
  const a = await startGateway(t, peerGatewayConfig(state));
  const b = await startGateway(t, peerGatewayConfig(state));
  const bridgeA = await join(t, redis, 'gw-a', a);
  const bridgeB = await join(t, redis, 'gw-b', b);
  const echo = await udpEcho(t);
  const home = await startAgent(t, peerAgentConfig(a, 'home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop] }\n`));
  const laptop = await startAgent(t, peerAgentConfig(b, 'laptop', `  connect:\n    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0 }\n`));
  await waitFor(() => home.agent.state === 'connected' && laptop.agent.state === 'connected', 'both agents connected');
  assert.equal(a.gateway.agent('laptop'), undefined, 'laptop is not on gateway A');
  assert.equal(b.gateway.agent('home'), undefined, 'home is not on gateway B');

  const c = await udpClient(t);
  c.send('first', laptop.agent.connectRoutes[0]!.local.port);
  await waitFor(() => c.got.includes('first'), 'first reply, relayed between the gateways', 5000);
  assert.equal(bridgeB.counters.relayedOpens, 1, 'the PEER_OPEN went from B to A');
  assert.ok(bridgeA.counters.relayedDatagrams >= 1 && bridgeB.counters.relayedDatagrams >= 1, 'the first datagram and its answer crossed Redis');
  const link = laptop.agent.peers.links.get('home')!;
  await waitFor(() => link.path === 'direct', 'the direct path, from signals relayed through Redis', 15_000);
  assert.ok(bridgeA.counters.relayedSignals > 0 && bridgeB.counters.relayedSignals > 0, 'SIGNALs crossed both ways');
  const relayedBefore = bridgeA.counters.relayedDatagrams;
  for (let i = 0; i < 20; i++) c.send(`d${i}`, laptop.agent.connectRoutes[0]!.local.port);
  await waitFor(() => [...Array(20).keys()].every((i) => c.got.includes(`d${i}`)), 'every reply', 5000);
  const flow = laptop.agent.peers.flows[0]!;
  assert.ok(flow.counters.direct >= 20, `direct: ${JSON.stringify(flow.counters)}`);
  assert.equal(bridgeA.counters.relayedDatagrams, relayedBefore, 'nothing more through Redis once direct');
});

test('a PEER_OPEN toward an agent present on no gateway of the fleet is refused peer-offline', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const state = await tempDir(t, 'sluice-fleet-peers-');
  const b = await startGateway(t, peerGatewayConfig(state));
  await join(t, redis, 'gw-b', b);
  const laptop = await startAgent(t, peerAgentConfig(b, 'laptop', `  connect:\n    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0, path: relay }\n`));
  await waitFor(() => laptop.agent.state === 'connected', 'laptop connected');
  const c = await udpClient(t);
  c.send('nobody', laptop.agent.connectRoutes[0]!.local.port);
  await waitFor(() => laptop.agent.peers.counters.flowsRefused === 1, 'refused');
  assert.equal(laptop.agent.peers.flows.length, 0);
});

test('a relayed PEER_OPEN the other gateway never answers is refused peer-offline after a bound (10 s), not before', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const state = await tempDir(t, 'sluice-fleet-peers-');
  // A member that says it holds `home` but runs no bridge: nothing ever answers on its channel.
  const quiet = new EventStream((err) => {
    throw err;
  });
  await member(t, redis, 'gw-silent', 1, quiet, () => ['home']);
  const clock = new ManualClock(Date.now());
  // Keepalives far apart: moving the gateway's clock by the bound must not look like a dead agent.
  const b = await startGateway(t, { ...peerGatewayConfig(state), keepaliveIntervalMs: 60_000 }, clock);
  const bridge = await join(t, redis, 'gw-b', b);
  const laptop = await startAgent(t, peerAgentConfig(b, 'laptop', `  connect:\n    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0, path: relay }\n`));
  await waitFor(() => laptop.agent.state === 'connected', 'laptop connected');
  const c = await udpClient(t);
  c.send('into the void', laptop.agent.connectRoutes[0]!.local.port);
  await waitFor(() => bridge.counters.relayedOpens === 1, 'the open went to gw-silent');
  clock.advance(PENDING_OPEN_MS - 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(laptop.agent.peers.counters.flowsRefused, 0, 'still waiting just before the bound');
  clock.advance(1);
  await waitFor(() => laptop.agent.peers.counters.flowsRefused === 1, 'refused at the bound').catch((e) => {
    throw new Error(`${(e as Error).message}: ${JSON.stringify(laptop.agent.peers.counters)} ${laptop.seen.map((x) => x.type + ':' + ((x as { reason?: string }).reason ?? '')).join(',')}`);
  });
});

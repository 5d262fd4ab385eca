import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { Gateway } from '../../src/gateway/gateway.js';
import type { FleetBus } from '../../src/gateway/fleet-peers.js';
import { tempDir } from '../helpers/peers.js';
import { waitFor } from '../helpers/net.js';
import { startRedis } from '../helpers/redis-server.js';
import { peerAgentConfig, peerGatewayConfig, startAgent, startGateway, udpClient, udpEcho } from '../connect/connect-helpers.js';

/**
 * The bridge alone (src/gateway/fleet-peers.ts) over a real redis-server's pub/sub: two
 * gateways in this process, agents homed on one each. Where an agent is present comes from the
 * gateways themselves here; the fleet's presence keys feed it in a running fleet.
 */
async function bus(t: TestContext, url: string, name: string, fleet: Record<string, Gateway>): Promise<FleetBus> {
  const pub = new Redis(url, { lazyConnect: true });
  const sub = new Redis(url, { lazyConnect: true });
  await Promise.all([pub.connect(), sub.connect()]);
  t.after(() => {
    pub.disconnect();
    sub.disconnect();
  });
  const handlers = new Map<string, (m: string) => void>();
  sub.on('message', (channel: string, message: string) => handlers.get(channel)?.(message));
  return {
    name,
    publish: (channel, message) => {
      void pub.publish(`test:${channel}`, message);
      return true;
    },
    subscribe: (channel, onMessage) => {
      handlers.set(`test:${channel}`, onMessage);
      void sub.subscribe(`test:${channel}`);
      return () => handlers.delete(`test:${channel}`);
    },
    gatewaysOf: async (agent) => Object.entries(fleet).filter(([, g]) => g.agent(agent)?.state === 'attached').map(([n]) => n),
  };
}

test('two agents on two gateways with no common one reach each other through a connect listener: relayed through Redis, then direct', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const state = await tempDir(t, 'sluice-fleet-peers-');
  const a = await startGateway(t, peerGatewayConfig(state));
  const b = await startGateway(t, peerGatewayConfig(state));
  const fleet = { 'gw-a': a.gateway, 'gw-b': b.gateway };
  const bridgeA = a.gateway.joinFleet(await bus(t, redis.url, 'gw-a', fleet));
  const bridgeB = b.gateway.joinFleet(await bus(t, redis.url, 'gw-b', fleet));
  // Let both subscriptions take before anything is published.
  await new Promise((r) => setTimeout(r, 100));
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
  b.gateway.joinFleet(await bus(t, redis.url, 'gw-b', { 'gw-b': b.gateway }));
  const laptop = await startAgent(t, peerAgentConfig(b, 'laptop', `  connect:\n    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0, path: relay }\n`));
  await waitFor(() => laptop.agent.state === 'connected', 'laptop connected');
  const c = await udpClient(t);
  c.send('nobody', laptop.agent.connectRoutes[0]!.local.port);
  await waitFor(() => laptop.agent.peers.counters.flowsRefused === 1, 'refused');
  assert.equal(laptop.agent.peers.flows.length, 0);
});

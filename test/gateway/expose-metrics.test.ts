import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { registerExposeMetrics } from '../../src/ops/expose-metrics.js';
import { udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

test('gateway and agent counters are exposed as Prometheus metrics at scrape time', async (t) => {
  const echo = await udpEcho(t);
  const gw = await startGateway(t, gatewayConfig());
  const { agent } = await startAgent(t, agentConfig(gw, `    u: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:0 }\n    far: { local: 127.0.0.1:9, remote: tcp://127.0.0.1:1000 }`));
  await waitFor(() => agent.services()[0]!.bound !== undefined && (agent.counters.publishRefused['port-outside-range'] ?? 0) === 1, 'publish answers');
  const bad = await startAgent(t, { ...agentConfig(gw, '    x: { local: 127.0.0.1:9, remote: tcp://127.0.0.1:0 }'), token: 'wrong-token-0123456789abcdef' });
  await waitFor(() => (bad.agent.counters.refused['wrong-token'] ?? 0) >= 1, 'a refused agent');
  await waitFor(() => agent.datagramMode === 'udp', 'UDP up');
  const client = await udpClient(t);
  client.send(agent.services()[0]!.bound!.port, 'x');
  await client.next();
  void published;

  const registry = new Registry();
  registerExposeMetrics(registry, () => ({ gateway: gw.gateway, agent }));
  const text = await registry.metrics();
  assert.match(text, /sluice_gateway_auth_total\{result="ok"\} 1/);
  assert.match(text, /sluice_gateway_auth_total\{result="wrong-token"\} [1-9]/);
  assert.match(text, /sluice_gateway_publish_total\{result="port-outside-range"\} 1/);
  assert.match(text, /sluice_gateway_datagrams_total\{direction="to-agent",path="udp"\} 1/);
  assert.match(text, /sluice_gateway_agents\{state="attached"\} 1/);
  assert.match(text, /sluice_agent_connected 1/);
  assert.match(text, /sluice_agent_datagrams_over_udp 1/);
  assert.match(text, /sluice_agent_publish_refused_total\{code="port-outside-range"\} 1/);
});

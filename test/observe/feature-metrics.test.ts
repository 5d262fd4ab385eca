import { test } from 'node:test';
import assert from 'node:assert/strict';
import { udpEcho, waitFor } from '../helpers/net.js';
import { request, startApp } from '../admin/app-helper.js';
import { startAgentApp, startGatewayApp } from '../admin/exposure-apps.js';

/** The metric families (# TYPE lines) of a scrape whose names start with one of `prefixes`. */
async function families(base: string, ...prefixes: string[]): Promise<string[]> {
  const text = (await request(`${base}/metrics`)).body;
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!).filter((n) => prefixes.some((p) => n.startsWith(p)));
}

test('metric families exist only where their feature runs: plain routes, a pure gateway, a pure agent', async (t) => {
  const echo = await udpEcho(t);
  const plain = await startApp(
    t,
    `
routes:
  dns: { listen: udp://127.0.0.1:0, upstream: 127.0.0.1:${echo.port} }
accessLog: { output: off }
admin: { listen: 127.0.0.1:0 }
`,
  );
  // No crowdsec: section: no `sluice_crowdsec_up 0` for a "CrowdSec down" alert; no agent, no gateway, no peers.
  assert.deepEqual(await families(plain.admin(), 'sluice_crowdsec_', 'sluice_agent_', 'sluice_gateway_', 'sluice_peer_'), []);
  assert.ok((await families(plain.admin(), 'sluice_sessions_')).length > 0, 'the route families are there');

  const gw = await startGatewayApp(t);
  const gwFamilies = await families(gw.admin(), 'sluice_crowdsec_', 'sluice_agent_', 'sluice_gateway_', 'sluice_peer_');
  assert.ok(gwFamilies.includes('sluice_gateway_agents'), gwFamilies.join(' '));
  assert.deepEqual(gwFamilies.filter((n) => !n.startsWith('sluice_gateway_')), [], 'a pure gateway has no sluice_agent_connected 0');

  const agent = await startAgentApp(t, gw.gateway, `    dns: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:0 }`);
  await waitFor(() => agent.app.exposure!.agent!.state === 'connected', 'agent connected');
  const agFamilies = await families(agent.admin(), 'sluice_crowdsec_', 'sluice_agent_', 'sluice_gateway_', 'sluice_peer_');
  assert.ok(agFamilies.includes('sluice_agent_connected') && agFamilies.includes('sluice_peer_links'), agFamilies.join(' '));
  assert.deepEqual(agFamilies.filter((n) => n.startsWith('sluice_gateway_') || n.startsWith('sluice_crowdsec_')), []);
  assert.match((await request(`${agent.admin()}/metrics`)).body, /^sluice_agent_connected 1$/m);
});

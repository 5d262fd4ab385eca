import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, waitFor } from '../helpers/net.js';
import { getJson, request, startApp, tempDir } from './app-helper.js';
import type { RouteView } from '../../src/admin/views.js';
import { formatStatus } from '../../src/cli/status.js';
import { published, startAgent } from '../gateway/expose-helpers.js';
import { GROUP_KEY, namedUdpService, poolAgentConfig, tokenOf, udpClientFrom } from '../gateway/agent-pool-helpers.js';

// An agent pool as operators see it (docs/pools.md, "Agent pools"): the pool's route in
// /api/routes with its members, the pool families on /metrics, `sluice status`, the ops log.
test('agent pool visibility: /api/routes, /metrics, sluice status and the ops log show the members of an agent pool', async (t) => {
  const dir = await tempDir(t, 'sluice-agent-pool-app-');
  const port = await freePort('udp');
  const s = await startApp(t, `
gateway:
  listen: 127.0.0.1:0
  stateDir: ${dir}
  agents:
    a: { token: "${tokenOf('a')}" }
    b: { token: "${tokenOf('b')}" }
  ports: 1024-65535
  groups:
    ha: { agents: [a, b], key: "${GROUP_KEY}" }
accessLog: { output: off }
admin: { listen: 127.0.0.1:0 }
lifecycle: { drainTimeout: 1s }
`);
  const gw = s.app.exposure!.gateway!;
  const agents = [];
  for (const name of ['a', 'b']) {
    const svc = await namedUdpService(t, name);
    const { agent } = await startAgent(t, poolAgentConfig({ port: gw.tcpAddress.port, fingerprint: gw.fingerprint }, name, `    u: { local: 127.0.0.1:${svc.port}, remote: udp://127.0.0.1:${port}, group: ha, groupKey: "${GROUP_KEY}" }`));
    await published(agent);
    agents.push(agent);
  }
  const c = await udpClientFrom(t, '127.0.0.7');
  const member = (await c.ask(port, 'hi')).split(':')[0]!;
  const base = s.admin();
  const route = `ha/udp:${port}`;
  const view = async () => (await getJson<{ routes: RouteView[] }>(`${base}/api/routes`)).routes.find((r) => r.name === route)!;
  let v = await view();
  assert.equal(v.kind, 'published');
  assert.equal(v.pool!.balance, 'source-hash');
  assert.deepEqual(v.pool!.members.map((m) => [m.label, m.health, m.active]).sort(), [['a/u', 'up', member === 'a' ? 1 : 0], ['b/u', 'up', member === 'b' ? 1 : 0]]);

  const metrics = (await request(`${base}/metrics`)).body;
  assert.match(metrics, new RegExp(`sluice_pool_member_state\\{route="${route}",member="a/u",state="up"\\} 1`));
  assert.match(metrics, new RegExp(`sluice_pool_member_active\\{route="${route}",member="${member}/u"\\} 1`));

  // The serving agent goes away: the ops log has the transition, the API and status show it.
  await agents[member === 'a' ? 0 : 1]!.close();
  await waitFor(() => s.logs().includes('pool member down'), 'ops log line');
  const line = JSON.parse(s.logs().split('\n').find((l) => l.includes('pool member down'))!) as { member: string; cause: string };
  assert.deepEqual([line.member, line.cause], [`${member}/u`, 'agent-down']);
  v = await view();
  const other = member === 'a' ? 'b' : 'a';
  assert.deepEqual(v.pool!.members.map((m) => [m.label, m.health]), [[`${other}/u`, 'up']]);
  assert.match(formatStatus([v], { total: 0, truncated: false, sessions: [] }), new RegExp(`${route.replace(/[/.]/g, '\\$&')}[\\s\\S]*${other}/u +1 +up`));
});

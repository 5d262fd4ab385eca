import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/net.js';
import { getJson, request, startApp } from './app-helper.js';
import { proxiedClients, clientAt, udpMember } from '../helpers/pool-members.js';
import type { RouteView } from '../../src/admin/views.js';
import { formatStatus } from '../../src/cli/status.js';

// A pooled route as operators see it (docs/pools.md): /api/routes members with health, last
// check and traffic; the pool families on /metrics; `sluice status`; transitions in the ops log.
test('pool visibility: /api/routes, /metrics, sluice status and the ops log show members, health and traffic', async (t) => {
  const a = await udpMember(t, 'a');
  const b = await udpMember(t, 'b');
  const s = await startApp(t, `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: ["127.0.0.1:${a.port}", { address: "127.0.0.1:${b.port}", weight: 2 }]
    balance: round-robin
    proxyProtocol: { accept: [127.0.0.1/32] }
    health:
      udp: { send: "text:ping", expect: "text:pong", interval: 150ms, timeout: 100ms, rise: 1, fall: 1 }
accessLog: { output: off }
admin: { listen: 127.0.0.1:0 }
lifecycle: { drainTimeout: 1s }
`);
  const base = s.admin();
  const game = async () => (await getJson<{ routes: RouteView[] }>(`${base}/api/routes`)).routes.find((r) => r.name === 'game')!;
  await waitFor(() => a.probes > 0 && b.probes > 0, 'checks ran');
  const c = await proxiedClients(t);
  for (let i = 0; i < 3; i++) c.send(s.port('game'), clientAt(i), 'hello');
  await waitFor(() => c.replies.length === 3, 'replies');
  let view = await game();
  assert.equal(view.upstream, `127.0.0.1:${a.port}`, 'upstream shows the first member');
  assert.equal(view.pool!.balance, 'round-robin');
  assert.deepEqual(view.pool!.members.map((m) => [m.label, m.weight, m.health, m.active]), [[`127.0.0.1:${a.port}`, 1, 'up', 1], [`127.0.0.1:${b.port}`, 2, 'up', 2]]);
  assert.equal(view.pool!.members[1]!.bytesFromClient, 10, 'two sessions of 5 bytes on b');
  assert.equal(view.pool!.members[1]!.bytesToClient, 2 * 'b:hello'.length);
  assert.equal(view.pool!.members[0]!.lastCheck!.outcome, 'ok');

  const metrics = (await request(`${base}/metrics`)).body;
  assert.match(metrics, new RegExp(`sluice_pool_member_state\\{route="game",member="127.0.0.1:${b.port}",state="up"\\} 1`));
  assert.match(metrics, new RegExp(`sluice_pool_member_active\\{route="game",member="127.0.0.1:${b.port}"\\} 2`));
  assert.match(metrics, new RegExp(`sluice_pool_member_bytes_total\\{route="game",member="127.0.0.1:${b.port}",direction="from_client"\\} 10`));

  b.close();
  await waitFor(() => s.logs().includes('pool member down'), 'ops log line');
  view = await game();
  assert.equal(view.pool!.members[1]!.health, 'down');
  const line = s.logs().split('\n').find((l) => l.includes('pool member down'))!;
  assert.equal(JSON.parse(line).member, `127.0.0.1:${b.port}`);
  const text = formatStatus([view], { total: 0, truncated: false, sessions: [] });
  assert.match(text, new RegExp(`game +127\\.0\\.0\\.1:${b.port} +2 +down +refused`));
});

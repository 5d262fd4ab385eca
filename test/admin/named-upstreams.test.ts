import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RouteView } from '../../src/admin/views.js';
import { peerGatewayConfig, startGateway } from '../connect/connect-helpers.js';
import { getJson, tempDir } from './app-helper.js';
import { gatewayAndAgent } from './exposure-apps.js';
import { startLaptopApp } from './peer-app.js';

// Listeners that reach a service by name (an agent's connect listeners, a gateway's published
// services) have no upstream address: the API names what they reach, and their settings are
// their own session settings (no ACL, no PROXY protocol on a connect listener).

test('connect listeners in /api/routes: upstream is peer/service, settings are the entry\'s tcp/udp blocks', async (t) => {
  const dir = await tempDir(t, 'sluice-named-upstream-');
  const gw = await startGateway(t, peerGatewayConfig(dir));
  const s = await startLaptopApp(
    t,
    gw,
    '    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0, udp: { maxSessions: 7 } }\n    home-ssh: { peer: home, service: ssh, listen: tcp://127.0.0.1:0, tcp: { connectTimeout: 3s } }',
    'accessLog: { output: off }\n',
  );
  const agent = s.app.exposure!.agent!;
  const { routes } = await getJson<{ routes: RouteView[] }>(`${s.admin()}/api/routes`);
  const byName = new Map(routes.map((r) => [r.name, r]));
  const wg = byName.get('connect/home-wg')!;
  const ssh = byName.get('connect/home-ssh')!;
  assert.deepEqual([wg.kind, wg.proto, wg.upstream, wg.state], ['connect', 'udp', 'home/wg', 'up']);
  assert.deepEqual([ssh.kind, ssh.proto, ssh.upstream, ssh.state], ['connect', 'tcp', 'home/ssh', 'up']);
  assert.equal(wg.address, `127.0.0.1:${agent.connectRoutes.find((r) => r.name === 'connect/home-wg')!.local.port}`);
  assert.equal(wg.settings.maxSessions, 7);
  assert.equal(ssh.settings.connectTimeout, '3s');
  for (const r of [wg, ssh]) {
    assert.equal(r.settings.acl, 'off');
    assert.equal(r.settings.proxyProtocol, undefined);
  }
});

test("a gateway's published services in /api/routes: upstream is agent/service", async (t) => {
  const { gw } = await gatewayAndAgent(t);
  const { routes } = await getJson<{ routes: RouteView[] }>(`${gw.admin()}/api/routes`);
  assert.deepEqual(
    routes.map((r) => [r.name, r.kind, r.upstream]).sort(),
    [
      ['home/echot', 'published', 'home/echot'],
      ['home/echou', 'published', 'home/echou'],
    ],
  );
});

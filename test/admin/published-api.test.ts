import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { RouteView, SessionView } from '../../src/admin/views.js';
import type { AgentStatusView } from '../../src/ops/agent-view.js';
import type { LiveTick } from '../../src/admin/live-hub.js';
import { runStatusCommand } from '../../src/cli/status.js';
import { freePort, readAll, tcpConnect, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { middlebox } from '../gateway/expose-helpers.js';
import { parseExposition } from '../observe/prom-text.js';
import { getJson, readTicks, request } from './app-helper.js';
import { gatewayAndAgent, startAgentApp, startGatewayApp } from './exposure-apps.js';
import { headlessChromium } from './browser.js';

/** `sluice status --admin base`: its exit code and output. */
async function status(base: string): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runStatusCommand(['--admin', base], { stdout: { write: (x: string) => (out += x) }, stderr: { write: () => {} }, env: {} });
  return { code, out };
}

const metrics = async (base: string) => parseExposition((await request(`${base}/metrics`)).body);

test("a gateway's published services show in its admin API, metrics, live stream and `sluice status` like routes, counted live", async (t) => {
  const { gw, agentApp, port } = await gatewayAndAgent(t);
  const base = gw.admin();

  // A live UDP session on home/echou: 3 datagrams of 10 bytes each way, still open.
  const c = await udpClient(t);
  for (let i = 0; i < 3; i++) {
    c.send(port('echou'), `datagram-${i}`);
    await c.next();
  }

  const { routes } = await getJson<{ routes: RouteView[] }>(`${base}/api/routes`);
  const echou = routes.find((r) => r.name === 'home/echou');
  assert.ok(echou, `home/echou listed in ${JSON.stringify(routes.map((r) => r.name))}`);
  assert.deepEqual([echou.kind, echou.agent, echou.state, echou.proto, echou.active], ['published', 'home', 'up', 'udp', 1]);
  assert.equal(echou.address, `127.0.0.1:${port('echou')}`);
  assert.deepEqual([echou.bytesFromClient, echou.bytesToClient, echou.packetsFromClient, echou.packetsToClient], [30, 30, 3, 3], 'live counters of the open session');
  const echot = routes.find((r) => r.name === 'home/echot')!;
  assert.deepEqual([echot.kind, echot.agent, echot.state, echot.proto, echot.active], ['published', 'home', 'up', 'tcp', 0]);

  const health = await getJson<{ routes: number; activeSessions: number; gateway: { agents: number; published: number } }>(`${base}/api/health`);
  assert.deepEqual([health.routes, health.activeSessions, health.gateway], [2, 1, { agents: 1, published: 2 }]);

  const page = await getJson<{ total: number; sessions: SessionView[] }>(`${base}/api/sessions`);
  assert.deepEqual(page.sessions.map((s) => [s.route, s.proto, s.clientPort, s.bytesFromClient]), [['home/echou', 'udp', c.port, 30]]);

  // Metrics: the session is active, and its bytes are counted while it lives (not only at its end).
  const m = await metrics(base);
  assert.equal(m.get('sluice_sessions_active{proto="udp",route="home/echou"}'), 1);
  assert.equal(m.get('sluice_bytes_total{direction="from_client",proto="udp",route="home/echou"}'), 30);
  assert.equal(m.get('sluice_bytes_total{direction="to_client",proto="udp",route="home/echou"}'), 30);
  assert.equal(m.get('sluice_packets_total{direction="from_client",proto="udp",route="home/echou"}'), 3);
  assert.equal(m.get('sluice_route_up{route="home/echou"}'), 1);
  c.send(port('echou'), 'one-more!!');
  await c.next();
  assert.equal((await metrics(base)).get('sluice_bytes_total{direction="from_client",proto="udp",route="home/echou"}'), 40, 'counted again at the next scrape');
  // The agent's side of the same session (toward its local service) is counted live as well.
  const am = await metrics(agentApp.admin());
  assert.equal(am.get('sluice_sessions_active{proto="udp",route="home/echou"}'), 1);
  assert.equal(am.get('sluice_bytes_total{direction="from_client",proto="udp",route="home/echou"}'), 40);
  assert.equal(am.get('sluice_bytes_total{direction="to_client",proto="udp",route="home/echou"}'), 40);

  // The live stream (the dashboard's chart and routes table) sees the published route and its bytes.
  const [tick] = await readTicks<LiveTick>(`${base}/api/stream`, () => true);
  assert.deepEqual(tick!.routes.find((r) => r.name === 'home/echou'), { name: 'home/echou', active: 1 });
  assert.equal(tick!.totals.bytesFromClient, 40);
  assert.equal(tick!.sessions[0]!.route, 'home/echou');

  // A TCP connection: counted live too.
  const sock = await tcpConnect(t, port('echot'));
  sock.write('tcp-bytes');
  await waitFor(() => gw.app.exposure!.gateway!.published().find((p) => p.service === 'echot')!.route.sessions()[0]?.bytesToClient === 9, 'tcp echoed');
  const tcpView = (await getJson<{ routes: RouteView[] }>(`${base}/api/routes`)).routes.find((r) => r.name === 'home/echot')!;
  assert.deepEqual([tcpView.active, tcpView.bytesFromClient, tcpView.bytesToClient], [1, 9, 9]);

  // `sluice status` against the real admin API.
  const { code, out } = await status(base);
  assert.equal(code, 0);
  const row = out.split('\n').find((l) => l.startsWith('home/echou'));
  assert.ok(row, out);
  assert.match(row, /^home\/echou\s+udp\s+udp:\/\/127\.0\.0\.1:\d+\s+127\.0\.0\.1:\d+\s+home\/echou\s+1\s+published by home\s+up\s+40\s+40$/);
  sock.end();
  await readAll(sock);

  // The agent goes away: its services leave the routes, and sluice_route_up drops their series.
  await agentApp.stop();
  await waitFor(() => gw.app.exposure!.gateway!.published().length === 0, 'services closed');
  assert.deepEqual((await getJson<{ routes: RouteView[] }>(`${base}/api/routes`)).routes, []);
  const after = await metrics(base);
  assert.equal(after.get('sluice_route_up{route="home/echou"}'), undefined);
  assert.equal(after.get('sluice_bytes_total{direction="from_client",proto="udp",route="home/echou"}'), 40, 'the ended session adds nothing twice');
});

test("an agent's /api/health and `sluice status` show its gateway connection and what it published; a refusal shows its code", async (t) => {
  const { gw, agentApp, agent, port } = await gatewayAndAgent(t);
  const base = agentApp.admin();
  const h = await getJson<{ agent: AgentStatusView }>(`${base}/api/health`);
  const a = h.agent;
  assert.equal(a.name, 'home');
  assert.equal(a.state, 'connected');
  assert.ok(a.connectedSince !== null && !Number.isNaN(Date.parse(a.connectedSince)));
  assert.equal(a.lastError, null);
  assert.deepEqual(
    a.services.map((s) => [s.name, s.proto, s.remote, s.state, s.bound, s.refusal]),
    [
      ['echou', 'udp', 'udp://127.0.0.1:0', 'published', `127.0.0.1:${port('echou')}`, null],
      ['echot', 'tcp', 'tcp://127.0.0.1:0', 'published', `127.0.0.1:${port('echot')}`, null],
    ],
  );

  let { code, out } = await status(base);
  assert.equal(code, 0);
  assert.match(out, /^AGENT home: connected to gateway 127\.0\.0\.1:\d+ since \S+, datagrams over (udp|tls)$/m);
  assert.match(out, new RegExp(`^echou\\s+udp\\s+127\\.0\\.0\\.1:\\d+\\s+udp://127\\.0\\.0\\.1:0\\s+published\\s+127\\.0\\.0\\.1:${port('echou')}$`, 'm'));

  // A lost gateway: the state and the reason show (the agent keeps retrying).
  await gw.stop();
  await waitFor(() => agent.state !== 'connected' && agent.lastDisconnect !== undefined, 'not connected');
  const down = (await getJson<{ agent: AgentStatusView }>(`${base}/api/health`)).agent;
  assert.notEqual(down.state, 'connected');
  assert.equal(down.connectedSince, null);
  assert.deepEqual(down.services.map((s) => s.state), ['pending', 'pending']);
  assert.ok(down.lastError && down.lastError.reason.length > 0 && !Number.isNaN(Date.parse(down.lastError.time)), JSON.stringify(down.lastError));
  ({ code, out } = await status(base));
  assert.equal(code, 0);
  assert.match(out, /^AGENT home: (waiting|connecting), gateway 127\.0\.0\.1:\d+ \(last error \S+ at \S+: .+\)$/m);
});

test('a refused PUBLISH shows as refused with its code in the agent status', async (t) => {
  const gw = await startGatewayApp(t);
  const agentApp = await startAgentApp(t, gw.gateway, '    far: { local: 127.0.0.1:9, remote: tcp://127.0.0.1:1000 }');
  await waitFor(() => agentApp.agent.services()[0]!.refusal !== undefined, 'publish refused');
  const a = (await getJson<{ agent: AgentStatusView }>(`${agentApp.admin()}/api/health`)).agent;
  assert.equal(a.services[0]!.state, 'refused');
  assert.equal(a.services[0]!.refusal!.code, 'port-outside-range');
  assert.equal(a.services[0]!.bound, null);
});

test('the dashboard lists a published service with its agent, and its live session, without a reload', async (t) => {
  const context = await headlessChromium(t, 'the dashboard with published services');
  if (!context) return;
  const { gw, port } = await gatewayAndAgent(t);
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  await page.goto(gw.admin());
  await page.waitForSelector('#conn.on', { timeout: 10_000 });
  const row = '#routes tbody tr[data-key="home/echou"]';
  await page.waitForSelector(row, { timeout: 10_000 });
  assert.equal((await page.locator(`${row} td`).first().textContent())?.trim(), 'home/echou (published by home)');

  const c = await udpClient(t);
  const pump = setInterval(() => c.send(port('echou'), 'live-bytes'), 100);
  t.after(() => clearInterval(pump));
  await page.waitForFunction((sel) => (globalThis as any).document.querySelector(`${sel} td:nth-child(6)`)?.textContent === '1', row, { timeout: 10_000 });
  await page.waitForSelector('#sessions tbody tr td:nth-child(2)', { timeout: 10_000 });
  assert.equal((await page.locator('#sessions tbody tr td:nth-child(2)').first().textContent())?.trim(), 'home/echou');
  assert.deepEqual(problems, []);
});

test("a published service is agent-detached while its agent's control connection is down within the resume grace, up again once it is back", async (t) => {
  const gw = await startGatewayApp(t);
  const box = await middlebox(t, gw.gateway.tcpAddress.port);
  const echo = await udpEcho(t);
  const agentApp = await startAgentApp(t, { tcpAddress: { port: box.port }, fingerprint: gw.gateway.fingerprint }, `    echou: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:0 }`);
  await waitFor(() => agentApp.agent.state === 'connected' && agentApp.agent.services()[0]!.bound !== undefined, 'published');
  const state = async () => (await getJson<{ routes: RouteView[] }>(`${gw.admin()}/api/routes`)).routes.find((r) => r.name === 'home/echou')?.state;
  assert.equal(await state(), 'up');

  // The control connection is cut and new ones go nowhere: the gateway keeps the listener, detached.
  box.tcpTarget = await freePort();
  box.cutTcp();
  await waitFor(() => gw.gateway.agent('home')?.state === 'detached', 'detached');
  assert.equal(await state(), 'agent-detached');

  box.tcpTarget = gw.gateway.tcpAddress.port;
  agentApp.agent.reconnectNow();
  await waitFor(() => gw.gateway.agent('home')?.state === 'attached' && gw.gateway.published().every((p) => !p.stale), 'resumed and re-published');
  assert.equal(await state(), 'up');
});

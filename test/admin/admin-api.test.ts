import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readAll, tcpConnect, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { getJson, readTicks, request, startApp } from './app-helper.js';
import type { RouteView, SessionView } from '../../src/admin/views.js';
import type { LiveTick } from '../../src/admin/live-hub.js';
import type { RecentDenial, RecentFlow } from '../../src/admin/recent.js';

const yaml = (udpUp: number, tcpUp: number) => `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${udpUp}
    udp: { idleTimeout: 30s, maxSessions: 100 }
  shell:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${tcpUp}
  walled:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${tcpUp}
    acl: { deny: [127.0.0.0/8] }
accessLog: { output: off }
admin: { listen: 127.0.0.1:0 }
lifecycle: { drainTimeout: 1s }
`;

test('admin API: routes, live sessions with counters, recent flows and denials, health', async (t) => {
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const s = await startApp(t, yaml(echo.port, up.port));
  const base = s.admin();

  const { routes } = await getJson<{ routes: RouteView[] }>(`${base}/api/routes`);
  assert.deepEqual(routes.map((r) => [r.name, r.proto, r.state]), [['game', 'udp', 'up'], ['shell', 'tcp', 'up'], ['walled', 'tcp', 'up']]);
  const game = routes[0]!;
  assert.equal(game.listen, 'udp://127.0.0.1:0');
  assert.equal(game.address, `127.0.0.1:${s.port('game')}`, 'the bound port');
  assert.equal(game.upstream, `127.0.0.1:${echo.port}`);
  assert.equal(game.active, 0);
  assert.deepEqual(game.settings, { idleTimeout: '30s', maxSessions: 100, maxSessionsPerSource: 256, rate: { perSecond: 50, burst: 100 }, ratePerSource: { perSecond: 20, burst: 40 }, onLimit: 'reject', acl: 'off' });
  assert.equal(routes[2]!.settings.acl, 'on');

  // Live: a UDP session with traffic and an open TCP connection.
  const c = await udpClient(t);
  c.send(s.port('game'), 'hello');
  await c.next();
  c.send(s.port('game'), 'again!');
  await c.next();
  const sock = await tcpConnect(t, s.port('shell'));
  sock.write('abc');
  await once(sock, 'data');
  await waitFor(() => s.app.routes.route('shell')!.sessions()[0]?.state === 'open', 'tcp open');

  const page = await getJson<{ total: number; truncated: boolean; sessions: SessionView[] }>(`${base}/api/sessions`);
  assert.equal(page.total, 2);
  assert.equal(page.truncated, false);
  const udp = page.sessions.find((x) => x.proto === 'udp')!;
  assert.equal(udp.route, 'game');
  assert.equal(udp.clientAddr, '127.0.0.1');
  assert.equal(udp.clientPort, c.port);
  assert.equal(udp.upstreamPort, echo.port);
  assert.equal(udp.state, 'open');
  assert.deepEqual([udp.bytesFromClient, udp.bytesToClient, udp.packetsFromClient, udp.packetsToClient], [11, 11, 2, 2]);
  assert.ok(udp.ageMs >= 0 && udp.ageMs < 10_000);
  assert.ok(!Number.isNaN(Date.parse(udp.startTime)));
  const tcp = page.sessions.find((x) => x.proto === 'tcp')!;
  assert.deepEqual([tcp.route, tcp.bytesFromClient, tcp.bytesToClient], ['shell', 3, 3]);
  const filtered = await getJson<{ total: number; sessions: SessionView[] }>(`${base}/api/sessions?route=shell&limit=5`);
  assert.deepEqual(filtered.sessions.map((x) => x.flowId), [tcp.flowId]);
  const limited = await getJson<{ total: number; truncated: boolean; sessions: SessionView[] }>(`${base}/api/sessions?limit=1`);
  assert.deepEqual([limited.total, limited.truncated, limited.sessions.length], [2, true, 1]);
  assert.equal((await getJson<{ routes: RouteView[] }>(`${base}/api/routes`)).routes[0]!.active, 1);

  // Ended flows and denials.
  sock.end();
  await readAll(sock);
  await waitFor(() => s.app.routes.route('shell')!.active === 0, 'tcp ended');
  const denied = await tcpConnect(t, s.port('walled'));
  await once(denied, 'end');
  const { flows } = await getJson<{ flows: RecentFlow[] }>(`${base}/api/flows`);
  assert.equal(flows.length, 1);
  assert.deepEqual([flows[0]!.route, flows[0]!.flowId, flows[0]!.bytesFromClient, flows[0]!.bytesToClient], ['shell', tcp.flowId, 3, 3]);
  assert.ok(flows[0]!.reason.length > 0);
  const { denials } = await getJson<{ denials: RecentDenial[] }>(`${base}/api/denials`);
  assert.equal(denials.length, 1);
  assert.deepEqual([denials[0]!.route, denials[0]!.proto, denials[0]!.reason, denials[0]!.clientPort], ['walled', 'tcp', 'acl-cidr', denied.localPort]);
  assert.match(denials[0]!.detail ?? '', /127\.0\.0\.0\/8/);

  const health = await getJson<Record<string, unknown>>(`${base}/api/health`);
  assert.equal(health.status, 'ok');
  assert.equal(health.auth, false);
  assert.equal(health.routes, 3);
  assert.equal(health.activeSessions, 1);
  assert.match(String(health.version), /^\d+\.\d+\.\d+/);
  assert.deepEqual(health.accessLog, { output: 'off' });
  assert.deepEqual(health.conntrack, { state: 'off' });

  // Not found, wrong method, security headers.
  const nf = await request(`${base}/api/nope`);
  assert.equal(nf.status, 404);
  const post = await request(`${base}/api/routes`, { method: 'POST' });
  assert.equal(post.status, 405);
  const r = await request(`${base}/api/routes`);
  assert.match(String(r.headers['content-security-policy']), /default-src 'none'/);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal(r.headers['access-control-allow-origin'], undefined, 'no CORS');
});

test('admin live stream: ticks carry session counters as they change, events, and totals', async (t) => {
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const s = await startApp(t, yaml(echo.port, up.port));
  const c = await udpClient(t);
  c.send(s.port('game'), 'first');
  await c.next();

  let sent = 1;
  const pump = setInterval(() => {
    c.send(s.port('game'), 'more!');
    sent++;
  }, 150);
  t.after(() => clearInterval(pump));
  const ticks = await readTicks<LiveTick>(`${s.admin()}/api/stream`, (tick, all) => {
    const first = all[0]!.sessions[0];
    const now = tick.sessions[0];
    return all.length >= 3 && first !== undefined && now !== undefined && now.bytesFromClient > first.bytesFromClient;
  });
  clearInterval(pump);
  const first = ticks[0]!;
  assert.equal(first.sessionsTotal, 1, 'the first tick comes at once with the current state');
  assert.equal(first.sessions[0]!.route, 'game');
  assert.deepEqual(first.routes, [{ name: 'game', active: 1 }, { name: 'shell', active: 0 }, { name: 'walled', active: 0 }]);
  const last = ticks.at(-1)!;
  assert.ok(last.sessions[0]!.packetsFromClient > first.sessions[0]!.packetsFromClient, 'counters moved between ticks');
  assert.ok(last.totals.bytesFromClient >= last.sessions[0]!.bytesFromClient);
  assert.ok(sent > 1);

  // Events between ticks: a denial appears in the next tick.
  const ticks2 = readTicks<LiveTick>(`${s.admin()}/api/stream`, (tick) => tick.events.some((e) => e.type === 'session-rejected'));
  await new Promise((r) => setTimeout(r, 200));
  const denied = await tcpConnect(t, s.port('walled'));
  await once(denied, 'end');
  const seen = await ticks2;
  const ev = seen.at(-1)!.events.find((e) => e.type === 'session-rejected')!;
  assert.deepEqual([ev.route, 'reason' in ev ? ev.reason : ''], ['walled', 'acl-cidr']);
  await waitFor(() => s.app.ops.live.streams === 0, 'streams closed by the client are forgotten');
});

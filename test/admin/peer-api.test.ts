import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { udpClient, waitFor } from '../helpers/net.js';
import { peerApps } from './peer-app.js';
import { getJson, request } from './app-helper.js';
import { startGatewayApp } from './exposure-apps.js';
import type { PeersView } from '../../src/ops/peer-view.js';
import { formatPeers, formatStatus, type StatusPeers } from '../../src/cli/status.js';

type PeersBody = PeersView & { gateway: unknown };

/** A gateway and `home` (exposing wg to laptop) in this process; laptop is a whole App with an admin listener. */
async function setup(t: TestContext, path: 'auto' | 'relay') {
  const r = await peerApps(
    t,
    `    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0, path: ${path}, udp: { idleTimeout: 1s } }`,
    (dir) => `accessLog: { output: ${join(dir, 'access.log')} }\nflowLog: { output: ${join(dir, 'flows.jsonl')}, updateInterval: 0s }\n`,
  );
  return { ...r, access: join(r.dir, 'access.log'), flows: join(r.dir, 'flows.jsonl') };
}

async function eventually(cond: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const lines = async (file: string) =>
  (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('GET /api/peers before any traffic: the connect listener is idle, no link', async (t) => {
  const { s } = await setup(t, 'auto');
  const v = await getJson<PeersBody>(`${s.admin()}/api/peers`);
  assert.equal(v.agent, 'laptop');
  assert.deepEqual(v.links, []);
  assert.equal(v.connect.length, 1);
  const c = v.connect[0]!;
  assert.equal(c.name, 'home-wg');
  assert.equal(c.route, 'connect/home-wg');
  assert.equal(c.peer, 'home');
  assert.equal(c.service, 'wg');
  assert.equal(c.path, 'auto');
  assert.equal(c.state, 'idle');
  assert.equal(c.linkPath, null);
  assert.deepEqual(c.flows, []);
  assert.equal(v.gateway, null, 'this process is no gateway');
  const health = await getJson<{ peers?: Record<string, number> }>(`${s.admin()}/api/health`);
  assert.deepEqual(health.peers, { links: 0, connecting: 0, direct: 0, relayed: 0, connectListeners: 1 });
});

test('GET /api/peers once direct: state, path, time to direct, pairs with a succeeded one, no reason; status, metrics and records agree', async (t) => {
  const { s, agent, listen, access, flows } = await setup(t, 'auto');
  const c = await udpClient(t);
  c.send(listen, 'p0');
  await c.next();
  const link = agent.peers.links.get('home')!;
  await waitFor(() => link.path === 'direct', 'direct path', 10_000);
  for (let i = 1; i <= 5; i++) {
    c.send(listen, `p${i}`);
    await c.next();
  }
  const v = await getJson<PeersBody>(`${s.admin()}/api/peers`);
  assert.equal(v.links.length, 1);
  const l = v.links[0]!;
  assert.equal(l.peer, 'home');
  assert.equal(l.role, 'controlled', "'laptop' sorts after 'home'");
  assert.equal(l.state, 'connected');
  assert.equal(l.path, 'direct');
  assert.equal(l.reason, null);
  assert.equal(typeof l.timeToDirectMs, 'number');
  assert.ok(l.timeToDirectMs! >= 0);
  assert.equal(l.lastRefusal, null);
  assert.equal(l.wantDirect, true);
  assert.ok(l.counters.directSent > 0, JSON.stringify(l.counters));
  assert.equal(l.diagnosis.ice, 'connected');
  assert.ok(l.diagnosis.pairs.length > 0);
  assert.ok(l.diagnosis.pairs.some((p) => p.outcome === 'succeeded' && p.state === 'succeeded'), JSON.stringify(l.diagnosis.pairs));
  assert.ok(l.diagnosis.candidates.local.length > 0);
  assert.ok(l.diagnosis.candidates.remote.length > 0);
  assert.equal(typeof l.diagnosis.selected, 'string');
  assert.match(l.diagnosis.selected!, / <-> /);
  assert.equal(typeof l.diagnosis.nat.local, 'string');
  const cr = v.connect[0]!;
  assert.equal(cr.state, 'connected');
  assert.equal(cr.linkPath, 'direct');
  assert.equal(cr.active, 1);
  assert.equal(cr.flows.length, 1);
  const f = cr.flows[0]!;
  assert.ok(f.counters.direct > 0 && f.counters.relayed >= 1, JSON.stringify(f.counters));
  assert.equal(f.counters.received, 6);
  assert.equal(f.pathKind, 'mixed');

  const health = await getJson<{ peers?: Record<string, number> }>(`${s.admin()}/api/health`);
  assert.deepEqual(health.peers, { links: 1, connecting: 0, direct: 1, relayed: 0, connectListeners: 1 });

  // The connect listener is a route like any other in the API.
  const routes = await getJson<{ routes: { name: string; active: number }[] }>(`${s.admin()}/api/routes`);
  assert.deepEqual(routes.routes.map((r) => [r.name, r.active]), [['connect/home-wg', 1]]);

  // sluice status: the tables from the same JSON.
  const text = formatPeers(v as unknown as StatusPeers).join('\n');
  const peerRow = text.split('\n').find((r) => r.startsWith('home '))!;
  assert.ok(peerRow, text);
  const cells = peerRow.split(/\s{2,}/);
  assert.deepEqual(cells.slice(0, 4), ['home', 'controlled', 'connected', 'direct']);
  assert.equal(cells[4], `${l.timeToDirectMs}ms`);
  assert.equal(cells.at(-1), '-', 'no reason when direct');
  const connectRow = text.split('\n').find((r) => r.startsWith('home-wg '))!;
  assert.deepEqual(connectRow.split(/\s{2,}/).slice(0, 8), ['home-wg', 'udp', `127.0.0.1:${listen}`, 'home', 'wg', 'auto', 'connected (direct)', '1']);

  // Metrics at scrape time.
  const m = (await request(`${s.admin()}/metrics`)).body;
  assert.match(m, /^sluice_peer_links\{peer="home",state="connected",path="direct"\} 1$/m);
  assert.match(m, /^sluice_peer_time_to_direct_seconds\{peer="home"\} [0-9.e-]+$/m);
  // relayed first (the relay carried the first datagram), then direct; a loaded machine may add a fallback and return.
  const changes = (path: string) => Number(new RegExp(`^sluice_peer_path_changes_total\\{peer="home",path="${path}"\\} (\\d+)$`, 'm').exec(m)?.[1]);
  assert.ok(changes('relayed') >= 1 && changes('direct') >= 1 && changes('direct') >= changes('relayed') - 1, m);
  const direct = Number(/^sluice_peer_datagrams_total\{route="connect\/home-wg",path="direct"\} (\d+)$/m.exec(m)?.[1]);
  const relayed = Number(/^sluice_peer_datagrams_total\{route="connect\/home-wg",path="relayed"\} (\d+)$/m.exec(m)?.[1]);
  assert.equal(direct + relayed, 6, m);
  assert.equal(direct, f.counters.direct);
  assert.match(m, /^sluice_peer_datagrams_received_total\{route="connect\/home-wg"\} 6$/m);
  assert.match(m, /^sluice_peer_direct_datagrams_total\{peer="home",direction="sent"\} \d+$/m);
  assert.match(m, /^sluice_sessions_active\{route="connect\/home-wg",proto="udp"\} 1$/m);

  // The session ends (idle timeout 1 s): its end line and end record say which path carried it.
  await eventually(async () => (await lines(flows)).some((r) => r.event === 'end'), 'end record', 8000);
  const end = (await lines(flows)).find((r) => r.event === 'end')!;
  assert.equal(end.route, 'connect/home-wg');
  assert.equal(end.peerPath, 'mixed');
  assert.equal(end.peerDatagramsDirect, f.counters.direct);
  assert.equal(end.peerDatagramsRelayed, f.counters.relayed);
  assert.equal(end.packetsFromClient, 6);
  await eventually(async () => (await lines(access)).some((r) => r.event === 'end'), 'access end line', 3000);
  const log = await lines(access);
  const endLine = log.find((r) => r.event === 'end')!;
  assert.equal(endLine.peerPath, 'mixed');
  assert.equal(endLine.peerDatagramsDirect, f.counters.direct);
  const pathLines = log.filter((r) => r.event === 'peer-path');
  assert.ok(pathLines.some((r) => r.peer === 'home' && r.state === 'connecting' && r.path === 'relayed' && typeof r.reason === 'string'), JSON.stringify(pathLines));
  const directLine = pathLines.find((r) => r.state === 'connected' && r.path === 'direct');
  assert.ok(directLine, JSON.stringify(pathLines));
  assert.equal('reason' in directLine, false, 'a direct path has no reason');
  for (let i = 1; i < pathLines.length; i++) {
    const [a, b] = [pathLines[i - 1]!, pathLines[i]!];
    assert.ok(!(a.state === b.state && a.path === b.path && a.reason === b.reason), 'no repeated line');
  }
});

test('GET /api/peers with path: relay pinned: relayed, the reason says so, no ICE; the records say relayed', async (t) => {
  const { s, listen, flows, gw } = await setup(t, 'relay');
  const c = await udpClient(t);
  for (let i = 0; i < 4; i++) {
    c.send(listen, `r${i}`);
    await c.next();
  }
  const v = await getJson<PeersBody>(`${s.admin()}/api/peers`);
  const l = v.links[0]!;
  assert.equal(l.state, 'connected');
  assert.equal(l.path, 'relayed');
  assert.equal(l.reason, 'path: relay is configured');
  assert.equal(l.wantDirect, false);
  assert.equal(l.timeToDirectMs, null);
  assert.equal(l.diagnosis.ice, 'none');
  assert.deepEqual(l.diagnosis.pairs, []);
  assert.equal(l.diagnosis.selected, null);
  const cr = v.connect[0]!;
  assert.equal(cr.path, 'relay');
  assert.equal(cr.linkPath, 'relayed');
  assert.deepEqual(cr.flows.map((f) => [f.counters.direct, f.counters.relayed, f.pathKind]), [[0, 4, 'relayed']]);
  assert.equal(gw.gateway.counters.signalsForwarded, 0);

  const text = formatStatus([], { total: 0, truncated: false, sessions: [] }, {}, v as unknown as StatusPeers);
  const row = text.split('\n').find((r) => r.startsWith('home '))!;
  const cells = row.split(/\s{2,}/);
  assert.deepEqual(cells.slice(0, 5), ['home', 'controlled', 'connected', 'relayed', '-']);
  assert.equal(cells.at(-1), 'path: relay is configured');

  const m = (await request(`${s.admin()}/metrics`)).body;
  assert.match(m, /^sluice_peer_links\{peer="home",state="connected",path="relayed"\} 1$/m);
  assert.doesNotMatch(m, /^sluice_peer_time_to_direct_seconds\{/m);
  assert.match(m, /^sluice_peer_datagrams_total\{route="connect\/home-wg",path="relayed"\} 4$/m);
  assert.doesNotMatch(m, /^sluice_peer_datagrams_total\{route="connect\/home-wg",path="direct"\}/m);

  await eventually(async () => (await lines(flows)).some((r) => r.event === 'end'), 'end record', 8000);
  const end = (await lines(flows)).find((r) => r.event === 'end')!;
  assert.equal(end.peerPath, 'relayed');
  assert.equal(end.peerDatagramsDirect, 0);
  assert.equal(end.peerDatagramsRelayed, 4);
  const start = (await lines(flows)).find((r) => r.event === 'start')!;
  assert.equal(start.route, 'connect/home-wg');
});

test('GET /api/peers on a gateway: its signalling and relay counters; no agent', async (t) => {
  const s = await startGatewayApp(t);
  const v = await getJson<PeersView & { gateway: Record<string, unknown> }>(`${s.admin()}/api/peers`);
  assert.equal(v.agent, null);
  assert.deepEqual(v.links, []);
  assert.deepEqual(v.gateway, {
    signals: { forwarded: 0, refused: {} },
    peerFlows: { tcp: {}, udp: {} },
    openFlows: { tcp: 0, udp: 0 },
    relayedDatagrams: { toService: 0, toOpener: 0, toOpenerDropped: 0 },
    relayedBytes: { udp: { toService: 0, toOpener: 0 }, tcp: { toService: 0, toOpener: 0 } },
  });
  const health = await getJson<Record<string, unknown>>(`${s.admin()}/api/health`);
  assert.equal('peers' in health, false);
});

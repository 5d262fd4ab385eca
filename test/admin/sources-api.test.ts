import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { tcpServer, waitFor } from '../helpers/net.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { getJson, request, startApp } from './app-helper.js';
import { SourceActivity, type SourceView } from '../../src/admin/source-activity.js';
import type { SluiceEvent } from '../../src/observe/events.js';

const TOKEN = 'sources-token-0123456789';

async function connectFrom(t: import('node:test').TestContext, port: number, localAddress: string): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port, localAddress });
  s.on('error', () => {});
  t.after(() => s.destroy());
  await once(s, 'connect');
  return s;
}

test('GET /api/sources (real sockets): top sources by sessions, bytes and rejections, with live sessions, behind the admin token', async (t) => {
  const up = await tcpServer(t);
  const s = await startApp(
    t,
    `
routes:
  shell:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    bandwidth: { perSource: 10Mbit/s, perRoute: { down: 1Gbit/s } }
  walled:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    acl: { deny: [127.0.0.3/32] }
accessLog: { output: off }
admin: { listen: 127.0.0.1:0, token: ${TOKEN} }
lifecycle: { drainTimeout: 1s }
`,
  );
  const base = s.admin();
  const auth = { authorization: `Bearer ${TOKEN}` };
  assert.equal((await request(`${base}/api/sources`)).status, 401);

  for (let i = 0; i < 3; i++) {
    const c = await connectFrom(t, s.port('shell'), '127.0.0.2');
    c.end('abcd');
    let got = 0;
    c.on('data', (b: Buffer) => (got += b.length));
    await once(c, 'close');
    assert.equal(got, 4);
  }
  for (let i = 0; i < 2; i++) await once(await connectFrom(t, s.port('walled'), '127.0.0.3'), 'close');
  const open = await connectFrom(t, s.port('shell'), '127.0.0.4');
  open.write('xy');
  await once(open, 'data');
  const shell = s.app.routes.route('shell')!;
  await waitFor(() => shell.active === 1 && shell.sessions()[0]!.bytesToClient === 2, 'only the open connection is left');

  const { routes } = await getJson<{ routes: { name: string; settings: Record<string, unknown> }[] }>(`${base}/api/routes`, auth);
  assert.deepEqual(routes.find((r) => r.name === 'shell')!.settings.bandwidth, { perSource: { up: '10Mbit/s', down: '10Mbit/s' }, perRoute: { down: '1Gbit/s' } });
  assert.equal(routes.find((r) => r.name === 'walled')!.settings.bandwidth, undefined);

  type Body = { window: string; by: string; tracked: number; sources: SourceView[] };
  const bySessions = await getJson<Body>(`${base}/api/sources`, auth);
  assert.equal(bySessions.window, '1m');
  assert.equal(bySessions.by, 'sessions');
  assert.deepEqual(
    bySessions.sources.map((x) => [x.source, x.last1m.sessions, x.last1m.bytes, x.last1m.rejections, x.active, x.liveBytes, x.ban]),
    [
      ['127.0.0.2', 3, 24, 0, 0, 0, null],
      ['127.0.0.4', 1, 0, 0, 1, 4, null],
      ['127.0.0.3', 0, 0, 2, 0, 0, null],
    ],
  );
  assert.deepEqual(bySessions.sources[0]!.last10m, { sessions: 3, bytes: 24, rejections: 0 });
  const byRejections = await getJson<Body>(`${base}/api/sources?by=rejections&window=10m&limit=1`, auth);
  assert.deepEqual(byRejections.sources.map((x) => x.source), ['127.0.0.3']);
  const byBytes = await getJson<Body>(`${base}/api/sources?by=bytes`, auth);
  assert.deepEqual(byBytes.sources.map((x) => x.source), ['127.0.0.2', '127.0.0.4', '127.0.0.3']);
  const bad = await request(`${base}/api/sources?window=1h`, { headers: auth });
  assert.equal(bad.status, 400);
  assert.match(bad.body, /window must be 1m or 10m/);
  assert.equal((await request(`${base}/api/sources?by=speed`, { headers: auth })).status, 400);
});

test('source activity: windows expire on the injected clock, IPv6 counts per /64, the LRU is bounded, ban state is asked per source', () => {
  const clock = new ManualClock();
  const bans = new Map([['2001:db8:1:2::/64', { source: 'api', until: '2026-01-01T01:00:00.000Z' }]]);
  const a = new SourceActivity(clock, (k) => bans.get(k));
  const started = (address: string, family: 4 | 6): SluiceEvent => ({
    type: 'session-started', at: 0, upstream: { address: '127.0.0.1', port: 1, family: 4 }, startedAt: 0,
    flow: { id: 1, route: 'r', proto: 'udp', client: { address, port: 1, family } },
  });
  a.sink(started('2001:db8:1:2::a', 6));
  a.sink(started('2001:db8:1:2::b', 6));
  a.sink(started('198.51.100.7', 4));
  let top = a.top('1m', 'sessions', 10);
  assert.deepEqual(top.sources.map((x) => [x.source, x.last1m.sessions, x.active, x.ban]), [
    ['2001:db8:1:2::/64', 2, 2, { source: 'api', until: '2026-01-01T01:00:00.000Z' }],
    ['198.51.100.7', 1, 1, null],
  ]);
  clock.advance(61_000);
  top = a.top('1m', 'sessions', 10);
  assert.deepEqual(top.sources.map((x) => [x.source, x.last1m.sessions, x.last10m.sessions]), [
    ['2001:db8:1:2::/64', 0, 2],
    ['198.51.100.7', 0, 1],
  ], 'out of the 1 minute window, still in the 10 minute one (and active)');
  clock.advance(10 * 60_000);
  assert.equal(a.top('10m', 'sessions', 10).sources[0]!.last10m.sessions, 0);
  for (let i = 0; i < 5000; i++) a.sink({ type: 'session-rejected', at: 0, route: 'r', proto: 'tcp', client: { address: `10.0.${i >> 8}.${i & 255}`, port: 1, family: 4 }, reason: 'acl-cidr' });
  assert.equal(a.top('1m', 'rejections', 10).tracked, 4096);
});

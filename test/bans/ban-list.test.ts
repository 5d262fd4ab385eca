import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/net.js';
import { request, startApp, tempDir } from '../admin/app-helper.js';
import { encodeProxyV2 } from '../../src/protocol/proxy-protocol/index.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { clientSockets, echoUpstream, refusedAfterConnect } from './helpers.js';

// The ban list as data: the admin API, the state file across restarts, IPv6 prefixes (docs/bans.md).

const TOKEN = 'correct-horse-battery-staple-7f3a9c';

const yaml = (up: number, dir: string, admin = `{ listen: 127.0.0.1:0, token: ${TOKEN} }`) => `
admin: ${admin}
bans:
  stateDir: ${dir}
  rules:
    v6scan: { when: { newSessionsPer: { count: 2, window: 10s } }, ban: 1h, scope: { ipv4: 32, ipv6: 64 } }
routes:
  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up}
  v6:
    listen: tcp://[::1]:0
    upstream: 127.0.0.1:${up}
    proxyProtocol: { accept: ["::1/128"] }
    bans: [v6scan]
`;

const auth = { authorization: `Bearer ${TOKEN}` };
const json = { ...auth, 'content-type': 'application/json' };

async function refused(t: import('node:test').TestContext, port: number, from = '127.0.0.1'): Promise<boolean> {
  const s = net.connect({ host: '127.0.0.1', port, localAddress: from, allowHalfOpen: true });
  s.on('error', () => {});
  t.after(() => s.destroy());
  return refusedAfterConnect(s);
}

test('bans API: list, add and remove with the token; refused without it; each change is one audit line; bans survive a restart', async (t) => {
  const up = await echoUpstream(t);
  const dir = await tempDir(t, 'sluice-bans-');
  const clock = new ManualClock();
  const a = await startApp(t, yaml(up.port, dir), { clock });
  const base = a.admin();

  assert.equal((await request(`${base}/api/bans`)).status, 401);
  const body = JSON.stringify({ address: '127.0.0.1', duration: '1h', reason: 'manual test' });
  assert.equal((await request(`${base}/api/bans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status, 401);
  assert.equal(a.app.bans!.store.size, 0, 'nothing was added without the token');
  assert.equal(await refused(t, a.port('ssh')), false);

  const bad = await request(`${base}/api/bans`, { method: 'POST', headers: json, body: JSON.stringify({ address: '127.0.0.300', duration: '1h' }) });
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body).error, /^address: /);
  assert.equal((await request(`${base}/api/bans`, { method: 'POST', headers: json, body: JSON.stringify({ address: '127.0.0.1', duration: 'soon' }) })).status, 400);

  const add = await request(`${base}/api/bans`, { method: 'POST', headers: json, body });
  assert.equal(add.status, 201, add.body);
  assert.deepEqual(JSON.parse(add.body).ban, {
    target: '127.0.0.1',
    source: 'api',
    reason: 'manual test',
    createdAt: new Date(clock.wallNow()).toISOString(),
    expiresAt: new Date(clock.wallNow() + 3600_000).toISOString(),
  });
  assert.equal(await refused(t, a.port('ssh')), true, 'the banned address is refused');
  assert.equal(await refused(t, a.port('ssh'), '127.0.0.2'), false, 'another address is not');
  // /api/sources shows the ban of a banned source, and none for the other one.
  const sources = JSON.parse((await request(`${base}/api/sources`, { headers: auth })).body) as { sources: { source: string; ban: { target: string; source: string } | null }[] };
  const banOfSource = (k: string) => sources.sources.find((x) => x.source === k)?.ban;
  assert.deepEqual([banOfSource('127.0.0.1')?.target, banOfSource('127.0.0.1')?.source, banOfSource('127.0.0.2')], ['127.0.0.1', 'api', null]);
  const metrics = (await request(`${base}/metrics`, { headers: auth })).body;
  for (const line of ['sluice_bans_active 1', 'sluice_bans_added_total{source="api"} 1', 'sluice_sessions_rejected_total{route="ssh",proto="tcp",reason="banned"} 1']) {
    assert.ok(metrics.split('\n').includes(line), `metrics have ${line}`);
  }
  const list = JSON.parse((await request(`${base}/api/bans`, { headers: auth })).body);
  assert.deepEqual(list.bans.map((b: { target: string }) => b.target), ['127.0.0.1']);
  assert.equal(list.stateFile, join(dir, 'bans.json'));

  // Kept across a restart: the state file holds it, and the new process refuses the address.
  await a.app.bans!.flushed();
  const saved = JSON.parse(await readFile(join(dir, 'bans.json'), 'utf8'));
  assert.deepEqual(saved.bans.map((b: { target: string }) => b.target), ['127.0.0.1']);
  const logLines = a.logs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; target?: string; source?: string });
  assert.deepEqual(logLines.filter((l) => l.msg === 'ban added').map((l) => [l.target, l.source]), [['127.0.0.1', 'api']]);
  await a.stop();
  const b = await startApp(t, yaml(up.port, dir), { clock });
  assert.deepEqual(b.app.bans!.store.list().map((x) => [x.target, x.source, x.expiresAt]), [['127.0.0.1', 'api', clock.wallNow() + 3600_000]]);
  assert.equal(await refused(t, b.port('ssh')), true, 'still refused after the restart');

  const baseB = b.admin();
  assert.equal((await request(`${baseB}/api/bans?address=127.0.0.1`, { method: 'DELETE' })).status, 401);
  assert.equal((await request(`${baseB}/api/bans?address=127.0.0.9`, { method: 'DELETE', headers: auth })).status, 404);
  const del = await request(`${baseB}/api/bans?address=127.0.0.1`, { method: 'DELETE', headers: auth });
  assert.equal(del.status, 200);
  assert.equal(JSON.parse(del.body).removed.target, '127.0.0.1');
  assert.equal(await refused(t, b.port('ssh')), false, 'admitted once the ban is removed');
  await b.app.bans!.flushed();
  assert.deepEqual(JSON.parse(await readFile(join(dir, 'bans.json'), 'utf8')).bans, []);
  const removedLines = b.logs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; why?: string });
  assert.deepEqual(removedLines.filter((l) => l.msg === 'ban removed').map((l) => l.why), ['removed']);
});

test('bans API: without admin.token, the list can be read but not changed', async (t) => {
  const up = await echoUpstream(t);
  const dir = await tempDir(t, 'sluice-bans-');
  const a = await startApp(t, yaml(up.port, dir, '{ listen: 127.0.0.1:0 }'));
  const r = await request(`${a.admin()}/api/bans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ address: '127.0.0.1', duration: '1h' }) });
  assert.equal(r.status, 403);
  assert.equal(a.app.bans!.store.size, 0);
  assert.equal((await request(`${a.admin()}/api/bans`)).status, 200);
});

test('bans: a malformed state file is reported with its name and ignored; the list starts empty and the file is rewritten whole', async (t) => {
  const up = await echoUpstream(t);
  const dir = await tempDir(t, 'sluice-bans-');
  const file = join(dir, 'bans.json');
  await writeFile(file, '{"version": 1, "bans": [ {"target": "127.0.0.1"');
  const a = await startApp(t, yaml(up.port, dir));
  const warn = a.logs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; file?: string; problem?: string }).find((l) => l.file === file);
  assert.equal(warn?.level, 40, 'one warning naming the file');
  assert.match(String(warn?.problem), /not JSON/);
  assert.equal(a.app.bans!.store.size, 0);
  assert.equal(await refused(t, a.port('ssh')), false, 'the relay runs');
  assert.equal(typeof a.app.bans!.add({ target: '127.0.0.2', source: 'api', reason: 'r', durationMs: 60_000 }), 'object');
  await a.app.bans!.flushed();
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')).bans.map((b: { target: string }) => b.target), ['127.0.0.2']);
});

test('bans: an IPv6 source behind a trusted PROXY sender is banned per /64: another /128 of the /64 is refused, another /64 is not', async (t) => {
  const sockets = clientSockets(t);
  const up = await echoUpstream(t);
  const dir = await tempDir(t, 'sluice-bans-');
  const clock = new ManualClock();
  const a = await startApp(t, yaml(up.port, dir), { clock });
  const seen: SluiceEvent[] = [];
  a.app.events.subscribe((e) => seen.push(e));
  const settled = () => seen.filter((e) => e.type === 'session-started' || e.type === 'session-rejected').length;
  const from = async (address: string) => {
    const before = settled();
    const s = net.connect({ host: '::1', port: a.port('v6'), allowHalfOpen: true });
    s.on('error', () => {});
    sockets.push(s);
    await once(s, 'connect');
    s.write(encodeProxyV2({ transport: 'STREAM', addresses: { source: { address, port: 40000 }, destination: { address: '2001:db8:ff::1', port: 22 } } }));
    await waitFor(() => settled() > before, `verdict for ${address}`);
    return s;
  };
  await from('2001:db8:1:2::a');
  await from('2001:db8:1:2::b');
  await waitFor(() => a.app.bans!.store.size === 1, 'the /64 is banned');
  assert.deepEqual(a.app.bans!.store.list().map((b) => [b.target, b.source]), [['2001:db8:1:2::/64', 'rule:v6scan']]);
  await from('2001:db8:1:2::ffff');
  await from('2001:db8:1:3::a');
  const rejected = seen.flatMap((e) => (e.type === 'session-rejected' ? [[e.client.address, e.reason]] : []));
  assert.deepEqual(rejected, [['2001:db8:1:2::ffff', 'banned']]);
  const endedBanned = seen.flatMap((e) => (e.type === 'session-ended' && e.reason === 'banned' ? [e.flow.client.address] : []));
  assert.deepEqual(endedBanned.sort(), ['2001:db8:1:2::a', '2001:db8:1:2::b']);
});

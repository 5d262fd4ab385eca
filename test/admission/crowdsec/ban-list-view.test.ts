import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { request, startApp, tempDir } from '../../admin/app-helper.js';
import { echoUpstream, refusedAfterConnect } from '../../bans/helpers.js';
import { runSluice } from '../../helpers/cli.js';
import { decision, fakeLapi } from './fake-lapi.js';

// CrowdSec's decisions in the one ban list (docs/bans.md "CrowdSec decisions in the list"): listed
// by GET /api/bans with source crowdsec, shown in /api/sources, never lifted by DELETE.

const TOKEN = 'crowdsec-ban-view-token-4d1c7e';
const auth = { authorization: `Bearer ${TOKEN}` };
const json = { ...auth, 'content-type': 'application/json' };

const yaml = (lapi: string, up: number, dir: string) => `
crowdsec: { url: "${lapi}", apiKey: good-key, interval: 100ms }
admin: { listen: 127.0.0.1:0, token: ${TOKEN} }
accessLog: { output: 'off' }
lifecycle: { drainTimeout: 100ms }
bans: { stateDir: ${dir} }
routes:
  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up}
    acl: { crowdsec: true }
`;

async function refused(t: TestContext, port: number, from: string): Promise<boolean> {
  const s = net.connect({ host: '127.0.0.1', port, localAddress: from, allowHalfOpen: true });
  s.on('error', () => {});
  t.after(() => s.destroy());
  return refusedAfterConnect(s);
}

interface ListedBan {
  target: string;
  source: string;
  scope?: string;
  reason: string;
  scenario?: string;
  origin?: string;
  decisionId?: number | null;
  createdAt: string;
  expiresAt: string | null;
}
interface BanPage {
  bans: ListedBan[];
  total: number;
  offset: number;
  limit: number;
  crowdsec: { state: string; mode: string; bans: number } | null;
}

async function listBans(base: string, query = ''): Promise<BanPage> {
  const r = await request(`${base}/api/bans${query}`, { headers: auth });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as BanPage;
}

test('crowdsec in the ban list: a pulled decision is listed with source crowdsec and shown in /api/sources; DELETE of it is 409 and changes nothing', async (t) => {
  const up = await echoUpstream(t);
  const dir = await tempDir(t, 'sluice-cs-bans-');
  const lapi = await fakeLapi(t);
  const ssh = decision('Ip', '127.0.0.2', { scenario: 'crowdsecurity/ssh-bf', origin: 'crowdsec', duration: '1h' });
  const range = decision('Range', '10.9.0.0/16', { scenario: 'manual', origin: 'cscli', duration: undefined });
  lapi.answer((r) => ({ body: r.startup === 'true' ? { new: [ssh, range] } : { new: null, deleted: null } }));
  const a = await startApp(t, yaml(lapi.url, up.port, dir));
  const base = a.admin();
  const before = Date.now();

  // An api ban beside them: the list's own bans come first, then CrowdSec's in the order received.
  const add = await request(`${base}/api/bans`, { method: 'POST', headers: json, body: JSON.stringify({ address: '127.0.0.3', duration: '1h', reason: 'by hand' }) });
  assert.equal(add.status, 201, add.body);
  const page = await listBans(base);
  assert.deepEqual(page.bans.map((b) => [b.target, b.source, b.scope ?? '-']), [['127.0.0.3', 'api', '-'], ['127.0.0.2', 'crowdsec', 'ip'], ['10.9.0.0/16', 'crowdsec', 'range']]);
  assert.deepEqual([page.total, page.offset, page.limit, page.crowdsec], [3, 0, 100, { state: 'ready', mode: 'enforce', bans: 2 }]);
  const cs = page.bans[1]!;
  assert.equal(cs.reason, 'crowdsecurity/ssh-bf (origin crowdsec)');
  assert.deepEqual([cs.scenario, cs.origin, cs.decisionId], ['crowdsecurity/ssh-bf', 'crowdsec', ssh.id]);
  const left = Date.parse(cs.expiresAt!) - before;
  assert.ok(left > 3_590_000 && left <= 3_600_000 + 5_000, `expires in about 1h (${left} ms)`);
  assert.ok(Date.parse(cs.createdAt) >= before - 5_000 && Date.parse(cs.createdAt) <= Date.now(), 'createdAt: when Sluice received it');
  assert.equal(page.bans[2]!.expiresAt, null, 'a decision without a duration lasts until CrowdSec deletes it');

  // /api/sources: the refused 127.0.0.2 carries CrowdSec's ban, 127.0.0.3 the api ban, 127.0.0.1 none.
  assert.equal(await refused(t, a.port('ssh'), '127.0.0.2'), true);
  assert.equal(await refused(t, a.port('ssh'), '127.0.0.3'), true);
  assert.equal(await refused(t, a.port('ssh'), '127.0.0.1'), false);
  const sources = JSON.parse((await request(`${base}/api/sources`, { headers: auth })).body) as { sources: { source: string; ban: ListedBan | null }[] };
  const banOf = (k: string) => sources.sources.find((x) => x.source === k)?.ban;
  assert.deepEqual([banOf('127.0.0.2')?.source, banOf('127.0.0.2')?.target, banOf('127.0.0.2')?.reason], ['crowdsec', '127.0.0.2', 'crowdsecurity/ssh-bf (origin crowdsec)']);
  assert.deepEqual([banOf('127.0.0.3')?.source, banOf('127.0.0.1')], ['api', null]);

  // DELETE of CrowdSec's ban: 409 naming cscli; the decision, the list and the refusal stay.
  const del = await request(`${base}/api/bans?address=127.0.0.2`, { method: 'DELETE', headers: auth });
  assert.equal(del.status, 409, del.body);
  const err = JSON.parse(del.body) as { error: string; crowdsec: ListedBan[] };
  assert.match(err.error, /^address: the ban on 127\.0\.0\.2 is CrowdSec's decision \(crowdsecurity\/ssh-bf \(origin crowdsec\)\); .*`cscli decisions delete --id \d+`$/);
  assert.match(err.error, new RegExp(`--id ${ssh.id}\``));
  assert.deepEqual(err.crowdsec.map((b) => b.target), ['127.0.0.2']);
  const covered = await request(`${base}/api/bans?address=10.9.1.1`, { method: 'DELETE', headers: auth });
  assert.equal(covered.status, 409, covered.body);
  assert.match(JSON.parse(covered.body).error, /10\.9\.1\.1 is banned by CrowdSec's decision on 10\.9\.0\.0\/16/);
  assert.equal((await request(`${base}/api/bans?address=127.0.0.9`, { method: 'DELETE', headers: auth })).status, 404);
  assert.deepEqual((await listBans(base)).bans.map((b) => b.target), ['127.0.0.3', '127.0.0.2', '10.9.0.0/16']);
  assert.equal(a.app.bans!.store.size, 1);
  assert.equal(a.app.crowdsec!.current!.stats().decisions, 2);
  assert.equal(await refused(t, a.port('ssh'), '127.0.0.2'), true, 'still refused');
  assert.doesNotMatch(a.logs(), /"msg":"ban removed"/);

  // The CLI says the same, and exits 1.
  const rm = runSluice(t, ['bans', 'remove', '127.0.0.2', '--admin', base, '--token', TOKEN], { SLUICE_ADMIN: '', SLUICE_ADMIN_TOKEN: '' });
  assert.equal(await rm.exited, 1, rm.err());
  assert.match(rm.err(), /^sluice bans: the ban on 127\.0\.0\.2 is CrowdSec's decision .*cscli decisions delete --id \d+`\n$/);

  // Once CrowdSec deletes it, it leaves the list at the next pull.
  lapi.answer(() => ({ body: { new: null, deleted: [ssh] } }));
  await a.app.crowdsec!.current!.refresh();
  await a.app.crowdsec!.current!.refresh();
  assert.deepEqual((await listBans(base, '?source=crowdsec')).bans.map((b) => b.target), ['10.9.0.0/16']);
});

test('crowdsec in the ban list: 1,000 decisions are paged (default 100, limit, offset, source) with their total; the CLI shows a page and where the next starts', async (t) => {
  const up = await echoUpstream(t);
  const dir = await tempDir(t, 'sluice-cs-bans-');
  const lapi = await fakeLapi(t);
  const many = Array.from({ length: 1000 }, (_, i) => decision('Ip', `10.0.${i >> 8}.${i & 255}`, { scenario: `s${i}` }));
  lapi.answer((r) => ({ body: r.startup === 'true' ? { new: many } : { new: null, deleted: null } }));
  const a = await startApp(t, yaml(lapi.url, up.port, dir));
  const base = a.admin();

  const first = await listBans(base);
  assert.equal(first.bans.length, 100);
  assert.equal(first.total, 1000);
  assert.deepEqual([first.bans[0]!.target, first.bans[99]!.target], ['10.0.0.0', '10.0.0.99']);
  const all = await listBans(base, '?limit=1000');
  assert.deepEqual(all.bans.map((b) => b.target), many.map((d) => d.value));
  const tail = await listBans(base, '?offset=990&limit=50');
  assert.deepEqual([tail.bans.length, tail.bans[0]!.target, tail.offset, tail.total], [10, '10.0.3.222', 990, 1000]);
  const apiOnly = await listBans(base, '?source=api');
  assert.deepEqual([apiOnly.bans.length, apiOnly.total, apiOnly.crowdsec?.bans], [0, 0, 1000]);
  for (const [q, want] of [['?limit=1001', /^limit: at most 1000/], ['?limit=ten', /^limit: expected a whole number/], ['?offset=-1', /^offset: /]] as const) {
    const r = await request(`${base}/api/bans${q}`, { headers: auth });
    assert.equal(r.status, 400, q);
    assert.match(JSON.parse(r.body).error, want);
  }
  const started = performance.now();
  for (let i = 0; i < 20; i++) await listBans(base);
  console.log(`GET /api/bans (default page of 100, 1,000 decisions): ${((performance.now() - started) / 20).toFixed(2)} ms per request`);

  const list = runSluice(t, ['bans', 'list', '--limit', '2', '--offset', '5', '--admin', base, '--token', TOKEN], { SLUICE_ADMIN: '', SLUICE_ADMIN_TOKEN: '' });
  assert.equal(await list.exited, 0, list.err());
  const lines = list.out().trimEnd().split('\n');
  assert.match(lines[0]!, /^TARGET\s+SOURCE\s+EXPIRES\s+REASON$/);
  assert.match(lines[1]!, /^10\.0\.0\.5\s+crowdsec\s+\d{4}-\S+\s+s5 \(origin cscli\)$/);
  assert.match(lines[2]!, /^10\.0\.0\.6\s+crowdsec\s+/);
  assert.equal(lines[3], 'bans 6-7 of 1000; next: --offset 7');
  assert.equal(lines.length, 4);
  const bad = runSluice(t, ['bans', 'list', '--limit', 'many', '--admin', base], { SLUICE_ADMIN: '', SLUICE_ADMIN_TOKEN: '' });
  assert.equal(await bad.exited, 2);
  assert.match(bad.err(), /--limit must be a whole number/);
});

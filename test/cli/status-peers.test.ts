import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { udpClient, waitFor } from '../helpers/net.js';
import { peerApps } from '../admin/peer-app.js';
import { runStatusCommand } from '../../src/cli/status.js';

async function status(args: string[], fetchImpl?: typeof fetch) {
  let out = '';
  let err = '';
  const code = await runStatusCommand(args, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env: {},
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
  });
  return { code, out, err };
}

/** laptop (an App with admin) connects to home's wg through a gateway, all in this process. */
async function laptop(t: TestContext, path: 'auto' | 'relay') {
  return peerApps(
    t,
    `    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0, path: ${path} }\n    home-ssh: { peer: home, service: ssh, listen: tcp://127.0.0.1:0, path: ${path} }`,
  );
}

const rowOf = (out: string, first: string) => out.split('\n').find((l) => l.split(/\s{2,}/)[0] === first)?.split(/\s{2,}/);

test('sluice status: a PEERS table and a CONNECT table per listener; idle before traffic', async (t) => {
  const { s, agent } = await laptop(t, 'auto');
  const r = await status(['--admin', s.admin()]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\nPEERS: 0\n/);
  const lines = r.out.split('\n');
  assert.match(lines.find((l) => l.startsWith('CONNECT'))!, /^CONNECT\s+PROTO\s+BOUND\s+PEER\s+SERVICE\s+PATH\s+STATE\s+ACTIVE\s+DIRECT\s+RELAYED\s+RECEIVED$/);
  assert.deepEqual(rowOf(r.out, 'home-wg'), ['home-wg', 'udp', `127.0.0.1:${agent.connectRoutes[0]!.local.port}`, 'home', 'wg', 'auto', 'idle', '0', '0', '0', '0']);
  assert.deepEqual(rowOf(r.out, 'home-ssh'), ['home-ssh', 'tcp', `127.0.0.1:${agent.connectRoutes[1]!.local.port}`, 'home', 'ssh', 'auto', 'idle', '0', '0', '0', '0']);
  // The connect listeners are routes in the ROUTE table too.
  assert.ok(rowOf(r.out, 'connect/home-wg'), r.out);
});

test('sluice status: connected direct with its time to direct and no reason; --json carries the peers view', async (t) => {
  const { s, agent, listen } = await laptop(t, 'auto');
  const c = await udpClient(t);
  c.send(listen, 'a');
  await c.next();
  const link = agent.peers.links.get('home')!;
  await waitFor(() => link.path === 'direct', 'direct', 10_000);
  c.send(listen, 'b');
  await c.next();
  const r = await status(['--admin', s.admin()]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\nPEERS: 1\n/);
  assert.match(r.out.split('\n').find((l) => l.startsWith('PEER '))!, /^PEER\s+ROLE\s+STATE\s+PATH\s+TIME_TO_DIRECT\s+SELECTED\s+REASON$/);
  const row = rowOf(r.out, 'home')!;
  assert.deepEqual(row.slice(0, 5), ['home', 'controlled', 'connected', 'direct', `${Math.round(link.timeToDirectMs!)}ms`]);
  assert.match(row[5]!, / <-> /);
  assert.equal(row[6], '-');
  const wg = rowOf(r.out, 'home-wg')!;
  assert.equal(wg[6], 'connected (direct)');
  assert.equal(wg[7], '1');
  assert.equal(Number(wg[8]) + Number(wg[9]), 2, wg.join('|'));
  assert.equal(wg[10], '2');
  assert.equal(rowOf(r.out, 'home-ssh')![6], 'connected (relayed)', 'TCP rides the relay whatever the link does');

  const j = await status(['--admin', s.admin(), '--json']);
  const body = JSON.parse(j.out) as { peers: { agent: string; links: { peer: string; path: string; reason: string | null }[] } };
  assert.equal(body.peers.agent, 'laptop');
  assert.deepEqual(body.peers.links.map((l) => [l.peer, l.path, l.reason]), [['home', 'direct', null]]);
});

test('sluice status: path relay pinned shows the reason in plain words', async (t) => {
  const { s, listen } = await laptop(t, 'relay');
  const c = await udpClient(t);
  c.send(listen, 'a');
  await c.next();
  const r = await status(['--admin', s.admin()]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(rowOf(r.out, 'home'), ['home', 'controlled', 'connected', 'relayed', '-', '-', 'path: relay is configured']);
  const wg = rowOf(r.out, 'home-wg')!;
  assert.deepEqual(wg.slice(5), ['relay', 'connected (relayed)', '1', '0', '1', '1']);
});

test('sluice status: an admin API without /api/peers (older Sluice) prints no peer tables', async () => {
  const answers: Record<string, unknown> = {
    '/api/routes': { routes: [] },
    '/api/sessions': { total: 0, truncated: false, sessions: [] },
    '/api/health': { status: 'ok', datapath: 'js' },
  };
  const fake = (async (url: URL) => {
    const body = answers[url.pathname];
    return body === undefined ? new Response('{"error":"not found"}', { status: 404 }) : Response.json(body);
  }) as unknown as typeof fetch;
  const r = await status(['--admin', '127.0.0.1:1'], fake);
  assert.equal(r.code, 0, r.err);
  assert.doesNotMatch(r.out, /PEERS|CONNECT/);
  assert.match(r.out, /UDP DATAPATH: js\n$/);
});

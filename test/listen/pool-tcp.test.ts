import assert from 'node:assert/strict';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { perDatapath } from '../datapath/datapaths.js';
import { config } from '../helpers/node.js';
import { freePort, waitFor } from '../helpers/net.js';
import { tcpMember } from '../helpers/pool-members.js';

// TCP routes over a pool of three members that say their name (docs/pools.md), on both stream
// datapaths: distribution per algorithm, weights, a dead member skipped within the connect
// timeout and ejected, checks bringing a member back, refusal when none is healthy, reload.
const { test, startNode } = perDatapath();

type Member = Awaited<ReturnType<typeof tcpMember>>;

const poolRoute = (ports: number[], extra = '', weights?: number[]) => `
routes:
  w:
    listen: tcp://127.0.0.1:0
    upstream: [${ports.map((p, i) => (weights ? `{ address: "127.0.0.1:${p}", weight: ${weights[i]} }` : `"127.0.0.1:${p}"`)).join(', ')}]
    tcp: { maxConnections: 10000, maxConnectionsPerSource: 10000, connectTimeout: 2s }
${extra}
`;

async function three(t: TestContext): Promise<Member[]> {
  return [await tcpMember(t, 'a'), await tcpMember(t, 'b'), await tcpMember(t, 'c')];
}

/** Connects, reads the member's name (first byte), closes. */
function whoAnswers(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('data', (d: Buffer) => {
      s.destroy();
      resolve(d.toString('latin1', 0, 1));
    });
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before a name')));
  });
}

/** `n` connections, `width` at a time; how many each member answered. */
async function spread(port: number, n: number, width = 50): Promise<Record<string, number>> {
  const count: Record<string, number> = {};
  for (let i = 0; i < n; i += width) {
    const names = await Promise.all(Array.from({ length: Math.min(width, n - i) }, () => whoAnswers(port)));
    for (const x of names) count[x] = (count[x] ?? 0) + 1;
  }
  return count;
}

const near = (got: Record<string, number>, want: Record<string, number>, tol: number) =>
  assert.ok(Object.entries(want).every(([k, v]) => Math.abs((got[k] ?? 0) - v) <= tol), `got ${JSON.stringify(got)} want ${JSON.stringify(want)} ±${tol}`);

for (const balance of ['round-robin', 'least-conn', 'p2c', 'source-hash'] as const) {
  test(`tcp pool distribution: ${balance} over 3,000 connections`, async (t) => {
    const ms = await three(t);
    const n = await startNode(t, poolRoute(ms.map((m) => m.port), `    balance: ${balance}`));
    const got = await spread(n.port('w'), 3000);
    if (balance === 'source-hash') {
      // One client address: every connection to the same member.
      assert.equal(Object.keys(got).length, 1, JSON.stringify(got));
    } else {
      near(got, { a: 1000, b: 1000, c: 1000 }, balance === 'p2c' ? 150 : 60);
    }
    await waitFor(() => n.node.pool('w')!.members.every((m) => m.active === 0), 'every connection released');
    assert.equal(n.node.pool('w')!.members.reduce((s, m) => s + m.sessions, 0), 3000);
  });
}

test('tcp pool weights: 3/1/1 round-robin', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute(ms.map((m) => m.port), '    balance: round-robin', [3, 1, 1]));
  near(await spread(n.port('w'), 1000), { a: 600, b: 200, c: 200 }, 10);
});

test('tcp pool: a member with nothing listening is skipped within the connect timeout and ejected; all connections succeed', async (t) => {
  const ms = await three(t);
  const dead = await freePort('tcp');
  const n = await startNode(t, poolRoute([ms[0]!.port, dead, ms[1]!.port], '    balance: round-robin'));
  const got = await spread(n.port('w'), 60, 10);
  assert.equal((got.a ?? 0) + (got.b ?? 0), 60);
  const e = n.ofType('pool-member').find((x) => x.member === `127.0.0.1:${dead}`);
  assert.equal(e?.to, 'ejected');
  assert.equal(e?.cause, 'dial-failed');
});

test('tcp pool: checks take a stopped member down and a restarted one back after rise checks', async (t) => {
  const ms = await three(t);
  const ports = ms.map((m) => m.port);
  const n = await startNode(t, poolRoute(ports, '    balance: round-robin\n    health:\n      tcp: { interval: 150ms, timeout: 100ms, rise: 2, fall: 2, jitter: 0 }'));
  await waitFor(() => n.node.pool('w')!.members.every((m) => m.health === 'up'), 'up');
  ms[2]!.stop();
  await waitFor(() => n.node.pool('w')!.members[2]!.health === 'down', 'c down');
  const got = await spread(n.port('w'), 40, 10);
  assert.equal(got.c ?? 0, 0);
  const again = net.createServer((s) => {
    s.on('error', () => {}); // checks reset their connections
    s.end('C');
  });
  again.listen(ports[2], '127.0.0.1');
  t.after(() => again.close());
  await waitFor(() => n.node.pool('w')!.members[2]!.health === 'up', 'c back', 4000);
  assert.ok(n.node.pool('w')!.members[2]!.lastCheck!.outcome === 'ok');
});

test('tcp pool: no healthy member refuses the client with no-healthy-upstream', async (t) => {
  const dead = [await freePort('tcp'), await freePort('tcp')];
  const n = await startNode(t, poolRoute(dead, '    health:\n      tcp: { interval: 100ms, timeout: 80ms, fall: 1 }'));
  await waitFor(() => n.node.pool('w')!.members.every((m) => m.health === 'down'), 'down');
  await assert.rejects(whoAnswers(n.port('w')));
  await waitFor(() => n.ofType('session-rejected').some((e) => e.reason === 'no-healthy-upstream'), 'refused');
  assert.equal(n.node.pool('w')!.refused, 1);
});

test('tcp pool reload: a removed member drains (its open connection goes on), a new member takes new ones', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute([ms[0]!.port, ms[1]!.port], '    balance: round-robin'));
  const held = net.connect({ host: '127.0.0.1', port: n.port('w') });
  t.after(() => held.destroy());
  const first = await new Promise<string>((r) => held.once('data', (d: Buffer) => r(d.toString())));
  const removed = first === 'a' ? ms[0]! : ms[1]!;
  const kept = first === 'a' ? ms[1]! : ms[0]!;
  await n.node.reload(config(poolRoute([kept.port, ms[2]!.port], '    balance: round-robin')));
  const view = n.node.pool('w')!;
  assert.equal(view.members.find((m) => m.key.endsWith(`:${removed.port}`))?.health, 'draining');
  const got = await spread(n.port('w'), 20, 5);
  assert.equal(got[first] ?? 0, 0);
  held.write('still here');
  await waitFor(() => removed.sockets.size === 1, 'held connection open on the removed member');
  const echoed = await new Promise<string>((r) => held.once('data', (d: Buffer) => r(d.toString())));
  assert.equal(echoed, 'still here');
  held.destroy();
  await waitFor(() => !n.node.pool('w')!.members.some((m) => m.key.endsWith(`:${removed.port}`)), 'drained member forgotten');
});

import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { perDatapath } from '../datapath/datapaths.js';
import { config } from '../helpers/node.js';
import { waitFor } from '../helpers/net.js';
import { clientAt, proxiedClients, udpMember, UNLIMITED_UDP, type UdpMember } from '../helpers/pool-members.js';

// UDP routes over a pool of three echo members (docs/pools.md), once per UDP datapath: how each
// algorithm spreads sessions, weights, source hash across a reload, failover of live sessions
// when a member dies or goes silent, rejoin, refusal, and the checks' own rate.
const { test, startNode } = perDatapath();

const memberList = (ms: UdpMember[], weights?: number[]) => `[${ms.map((m, i) => (weights ? `{ address: "127.0.0.1:${m.port}", weight: ${weights[i]} }` : `"127.0.0.1:${m.port}"`)).join(', ')}]`;

const poolRoute = (ms: UdpMember[], extra: string, weights?: number[]) => `
routes:
  g:
    listen: udp://127.0.0.1:0
    upstream: ${memberList(ms, weights)}
    proxyProtocol: { accept: [127.0.0.1/32] }
    ${UNLIMITED_UDP}
${extra}
`;

async function three(t: TestContext) {
  return [await udpMember(t, 'a'), await udpMember(t, 'b'), await udpMember(t, 'c')];
}

/**
 * Opens `n` sessions (one datagram each, distinct clients), 100 at a time, each batch counted at
 * the members before the next (a burst of thousands would overflow the listener's buffer).
 */
async function spread(t: TestContext, ms: UdpMember[], port: number, n: number, client = clientAt): Promise<number[]> {
  const c = await proxiedClients(t);
  const before = ms.reduce((s, m) => s + m.data, 0);
  for (let i = 0; i < n; i += 100) {
    for (let j = i; j < Math.min(n, i + 100); j++) c.send(port, client(j), 'x');
    const want = Math.min(n, i + 100);
    await waitFor(() => ms.reduce((s, m) => s + m.data, 0) - before === want, `${want} sessions reached the members (${ms.map((m) => m.data).join('/')})`, 10_000);
  }
  return ms.map((m) => m.sources.size);
}

const within = (got: number[], want: number[], tolerance: number) =>
  assert.ok(got.every((g, i) => Math.abs(g - want[i]!) <= tolerance), `got ${got.join('/')} want ${want.join('/')} ±${tolerance}`);

for (const balance of ['round-robin', 'least-conn', 'p2c', 'source-hash'] as const) {
  test(`pool distribution: ${balance} spreads 3,000 sessions over three members`, async (t) => {
    const ms = await three(t);
    const n = await startNode(t, poolRoute(ms, `    balance: ${balance}`));
    const got = await spread(t, ms, n.port('g'), 3000);
    // Exact turns for round-robin and least-sessions (sessions stay open); p2c and the hash are random-like.
    within(got, [1000, 1000, 1000], balance === 'round-robin' || balance === 'least-conn' ? 1 : 120);
    const view = n.node.pool('g')!;
    assert.deepEqual(view.members.map((m) => m.active), got);
  });
}

test('pool weights: 1/2/1 gives 750/1500/750 sessions (round-robin) and about that by source hash', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute(ms, '    balance: round-robin', [1, 2, 1]));
  within(await spread(t, ms, n.port('g'), 3000), [750, 1500, 750], 1);
  const hs = await three(t);
  const h = await startNode(t, poolRoute(hs, '    balance: source-hash', [1, 2, 1]));
  within(await spread(t, hs, h.port('g'), 3000), [750, 1500, 750], 120);
});

test('source hash: a client lands on the same member after a reload (members reordered) and on a second gateway', async (t) => {
  const ms = await three(t);
  const yaml = poolRoute(ms, '    balance: source-hash');
  const n = await startNode(t, yaml);
  const c = await proxiedClients(t);
  const where = async (port: number, i: number, clientPort: number) => {
    c.replies.length = 0;
    c.send(port, clientAt(i, clientPort), `q${i}`);
    await waitFor(() => c.replies.length === 1, 'reply');
    return c.replies[0]!.split(':')[0]!;
  };
  const first: string[] = [];
  for (let i = 0; i < 30; i++) first.push(await where(n.port('g'), i, 1000));
  assert.ok(new Set(first).size === 3, `all three members used: ${first.join('')}`);
  await n.node.reload(config(poolRoute([ms[2]!, ms[0]!, ms[1]!], '    balance: source-hash')));
  for (let i = 0; i < 30; i++) assert.equal(await where(n.port('g'), i, 2000), first[i], `client ${i} after reload (new port, same address)`);
  const other = await startNode(t, yaml);
  for (let i = 0; i < 30; i++) assert.equal(await where(other.port('g'), i, 3000), first[i], `client ${i} on a second gateway`);
});

const checks = (extra = '') => `    health:
      udp: { send: "text:ping", expect: "text:pong", interval: 200ms, timeout: 150ms, rise: 2, fall: 2, jitter: 0 }
${extra}`;

/** Sessions of 30 clients, one reply each; returns which member answered each. */
async function sessions(t: TestContext, port: number) {
  const c = await proxiedClients(t);
  const ask = async (i: number, tag: string) => {
    const before = c.replies.length;
    c.send(port, clientAt(i), tag);
    await waitFor(() => c.replies.length > before, `reply to ${tag}`);
    return c.replies[c.replies.length - 1]!.split(':')[0]!;
  };
  const at: string[] = [];
  for (let i = 0; i < 30; i++) at.push(await ask(i, `s${i}`));
  return { c, at, ask };
}

test('failover: a member whose socket closes (ICMP unreachable) loses its sessions to the others at once; nothing more reaches it; it rejoins after rise checks', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute(ms, '    balance: round-robin\n' + checks()));
  await waitFor(() => n.node.pool('g')!.members.every((m) => m.health === 'up'), 'members up');
  const { c, at, ask } = await sessions(t, n.port('g'));
  const b = ms[1]!;
  b.close();
  const downAt = Date.now();
  // The next datagram of each of b's sessions meets ICMP unreachable, or a check does first.
  for (let i = 0; i < 30; i++) if (at[i] === 'b') c.send(n.port('g'), clientAt(i), `lost${i}`);
  await waitFor(() => n.ofType('pool-member').some((e) => e.member.endsWith(`:${b.port}`) && (e.to === 'down' || e.to === 'ejected')), 'b out');
  assert.ok(Date.now() - downAt < 2 * 200 + 1000, 'out within fall x interval + tolerance');
  // Every session answers from a live member now, b's included.
  b.data = 0;
  await b.revive();
  for (let i = 0; i < 30; i++) assert.notEqual(await ask(i, `moved${i}`), 'b', `session ${i} still on b`);
  assert.equal(b.data, 0, 'no session datagram reached b after the move');
  await waitFor(() => n.node.pool('g')!.members.find((m) => m.key.endsWith(`:${b.port}`))!.health === 'up', 'b rejoined after rise checks', 4000);
  const ups = n.ofType('pool-member').filter((e) => e.member.endsWith(`:${b.port}`)).map((e) => e.to);
  assert.equal(ups[ups.length - 1], 'up');
});

test('failover: a silent member (open, no replies) is down after fall checks; its sessions move; nothing more reaches it after the move', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute(ms, '    balance: round-robin\n' + checks()));
  await waitFor(() => n.node.pool('g')!.members.every((m) => m.health === 'up'), 'members up');
  const { at, ask } = await sessions(t, n.port('g'));
  const b = ms[1]!;
  b.silent = true;
  const silentAt = Date.now();
  let dataAtMove = -1;
  n.events.subscribe((e) => {
    if (e.type === 'pool-member' && e.member.endsWith(`:${b.port}`) && e.to === 'down') dataAtMove = b.data;
  });
  await waitFor(() => dataAtMove >= 0, 'b down', 3000);
  // fall (2) x interval (200 ms), plus one interval for the check in flight, plus load tolerance.
  assert.ok(Date.now() - silentAt <= 2 * 200 + 200 + 800, `down after ${Date.now() - silentAt} ms`);
  for (let i = 0; i < 30; i++) if (at[i] === 'b') assert.notEqual(await ask(i, `moved${i}`), 'b');
  assert.equal(b.data, dataAtMove, 'no datagram reached the silent member after the move');
  b.silent = false;
  await waitFor(() => n.node.pool('g')!.members.find((m) => m.key.endsWith(`:${b.port}`))!.health === 'up', 'b rejoined', 3000);
});

test('failover keep: sessions stay on a member that went down (they end with it); new ones go elsewhere', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute(ms, '    balance: round-robin\n' + checks()).replace('ratePerSource: { perSecond: 0 } }', 'ratePerSource: { perSecond: 0 }, failover: keep }'));
  await waitFor(() => n.node.pool('g')!.members.every((m) => m.health === 'up'), 'members up');
  const { at } = await sessions(t, n.port('g'));
  const b = ms[1]!;
  b.silent = true;
  await waitFor(() => n.node.pool('g')!.members.find((m) => m.key.endsWith(`:${b.port}`))!.health === 'down', 'b down');
  const before = b.data;
  const c = await proxiedClients(t);
  for (let i = 0; i < 30; i++) if (at[i] === 'b') c.send(n.port('g'), clientAt(i), 'still');
  await waitFor(() => b.data === before + at.filter((x) => x === 'b').length, 'b keeps its sessions');
});

test('all members down: new sessions end with no-healthy-upstream, counted', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute(ms, checks()));
  for (const m of ms) m.close();
  await waitFor(() => n.node.pool('g')!.members.every((m) => m.health === 'down'), 'every member down (ICMP on checks)');
  const c = await proxiedClients(t);
  c.send(n.port('g'), clientAt(1), 'hello');
  await waitFor(() => n.ofType('session-rejected').some((e) => e.reason === 'no-healthy-upstream'), 'refused').catch((err) => {
    throw new Error(`${err.message} ${JSON.stringify(n.seen.slice(-5))}`);
  });
  assert.equal(n.node.pool('g')!.refused, 1);
});

test('health checks stay within their rate: one per member per interval, counted at the members', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute(ms, `    health:\n      udp: { send: "text:ping", expect: "text:pong", interval: 100ms, timeout: 50ms, jitter: 0.2 }`));
  const start = Date.now();
  await waitFor(() => ms.every((m) => m.probes >= 8), 'checks ran', 5000);
  const elapsed = Date.now() - start;
  for (const m of ms) assert.ok(m.probes <= Math.floor(elapsed / 100) + 1, `${m.name}: ${m.probes} checks in ${elapsed} ms`);
  for (const m of ms) {
    const gaps = m.probeTimes.slice(1).map((x, i) => x - m.probeTimes[i]!);
    assert.ok(gaps.every((g) => g >= 90), `${m.name}: gaps ${gaps.join(',')}`);
  }
  assert.ok(n.node.pool('g')!.members.every((m) => m.lastCheck?.outcome === 'ok'));
});

test('reload: sessions on members that remain stay; a removed member keeps its live sessions (draining) and gets no new ones', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute(ms, '    balance: round-robin'));
  const { at, ask } = await sessions(t, n.port('g'));
  await n.node.reload(config(poolRoute([ms[0]!, ms[1]!], '    balance: round-robin')));
  assert.equal(n.node.pool('g')!.members.find((m) => m.key.endsWith(`:${ms[2]!.port}`))!.health, 'draining');
  for (let i = 0; i < 30; i++) assert.equal(await ask(i, `again${i}`), at[i], `session ${i} stays on its member`);
  const c = await proxiedClients(t);
  const before = ms[2]!.sources.size;
  for (let i = 100; i < 130; i++) c.send(n.port('g'), clientAt(i), 'new');
  await waitFor(() => c.replies.length === 30, 'new sessions answered');
  assert.ok(c.replies.every((r) => !r.startsWith('c:')), 'no new session on the removed member');
  assert.equal(ms[2]!.sources.size, before);
});

test('passive health: a member that stops answering live sessions (silentDatagrams) is ejected and its sessions move, with no active checks', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute(ms, '    balance: round-robin\n    health:\n      passive: { silentDatagrams: 3, silentTime: 300ms, ejectTime: 30s }'));
  const { c, at, ask } = await sessions(t, n.port('g'));
  const b = ms[1]!;
  b.silent = true;
  const onB = at.map((x, i) => (x === 'b' ? i : -1)).filter((i) => i >= 0);
  for (let round = 0; round < 3; round++) for (const i of onB) c.send(n.port('g'), clientAt(i), `unanswered${round}`);
  await waitFor(() => n.ofType('pool-member').some((e) => e.member.endsWith(`:${b.port}`) && e.to === 'ejected' && e.cause === 'silent'), 'b ejected as silent', 3000);
  const seen = b.data;
  for (const i of onB) assert.notEqual(await ask(i, `moved${i}`), 'b');
  assert.equal(b.data, seen, 'nothing reached b after the move');
});

test('reload that fails to bind leaves the pools as they were', async (t) => {
  const ms = await three(t);
  const n = await startNode(t, poolRoute([ms[0]!, ms[1]!], '    balance: round-robin'));
  const taken = await udpMember(t, 'taken');
  const bad = poolRoute([ms[0]!, ms[2]!], '    balance: round-robin') + `  x:\n    listen: udp://127.0.0.1:${taken.port}\n    upstream: 127.0.0.1:9\n`;
  await assert.rejects(n.node.reload(config(bad)));
  assert.deepEqual(n.node.pool('g')!.members.map((m) => [m.key, m.health]), [[`127.0.0.1:${ms[0]!.port}`, 'up'], [`127.0.0.1:${ms[1]!.port}`, 'up']]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ManualClock } from '../helpers/manual-clock.js';
import { udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { startApp, tempDir } from '../admin/app-helper.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { perConfigDatapath } from '../datapath/stream-datapaths.js';
import { clientSockets, echoUpstream, ended } from './helpers.js';

// Behaviour bans over real sockets, on an injected clock (docs/bans.md).

const yaml = (up: number, stateDir: string, rule = '', allow = '[]') => `
bans:
  stateDir: ${stateDir}
  allow: ${allow}
  rules:
    scanners: { when: { newSessionsPer: { count: 5, window: 10s } }, ban: 2s, escalate: 2, maxBan: 5s${rule} }
routes:
  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up}
    bans: [scanners]
  other:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up}
`;

/** An App on a manual clock whose config starts with `bans:` (state in a temp dir) followed by `rest`. */
async function withBans(t: TestContext, rest: string) {
  const dir = await tempDir(t, 'sluice-bans-');
  const clock = new ManualClock();
  const a = await startApp(t, `bans:\n  stateDir: ${dir}${rest}`, { clock });
  return { a, clock, dir };
}

async function banApp(t: TestContext, extra: { rule?: string; allow?: string; datapathLine?: string } = {}) {
  // Registered first, so client sockets close before the app stops (its drain deadline runs on the manual clock).
  const sockets = clientSockets(t);
  const up = await echoUpstream(t);
  const dir = await tempDir(t, 'sluice-bans-');
  const clock = new ManualClock();
  const a = await startApp(t, yaml(up.port, dir, extra.rule, extra.allow) + (extra.datapathLine ?? ''), { clock });
  const seen: SluiceEvent[] = [];
  a.app.events.subscribe((e) => seen.push(e));
  const ofType = <K extends SluiceEvent['type']>(type: K) => seen.filter((e): e is Extract<SluiceEvent, { type: K }> => e.type === type);
  const settled = () => ofType('session-started').length + ofType('session-rejected').length;
  /** One connection from `from`; resolves once admission decided; `echoed` says whether bytes came back. */
  const connect = async (from = '127.0.0.1', route = 'ssh') => {
    const before = settled();
    const s = net.connect({ host: '127.0.0.1', port: a.port(route), localAddress: from, allowHalfOpen: true });
    s.on('error', () => {});
    sockets.push(s);
    await once(s, 'connect');
    await waitFor(() => settled() > before, `verdict for a connection from ${from}`);
    return s;
  };
  const echoes = async (s: net.Socket) => {
    s.write('ping');
    const [d] = (await once(s, 'data')) as [Buffer];
    return d.toString();
  };
  return { ...a, clock, dir, seen, ofType, connect, echoes, up };
}

// Once per datapath: on native the banned connections are joined pairs in the addon.
perConfigDatapath()('bans: 5 connections in 10 s ban the source for 2 s: its live connections end with banned, the next is refused, another source goes on; the ban expires on the clock and a second offence lasts twice as long', async (t, datapathLine) => {
  const b = await banApp(t, { datapathLine });
  const other = await b.connect('127.0.0.2');
  assert.equal(await b.echoes(other), 'ping');
  const live = [];
  for (let i = 0; i < 4; i++) {
    const s = await b.connect();
    assert.equal(await b.echoes(s), 'ping');
    live.push(s);
  }
  assert.equal(b.ofType('ban-added').length, 0, 'four connections are under the count');
  const fifth = await b.connect();
  await waitFor(() => b.ofType('ban-added').length === 1, 'the fifth connection bans the source');
  const [added] = b.ofType('ban-added');
  assert.deepEqual([added!.ban.target, added!.ban.source, added!.ban.expiresAt - added!.ban.createdAt, added!.observeOnly], ['127.0.0.1', 'rule:scanners', 2000, undefined]);

  // Every live connection of 127.0.0.1 ends with `banned`; 127.0.0.2's does not.
  await waitFor(() => b.ofType('session-ended').length === 5, 'the banned source\'s five connections end');
  assert.deepEqual(
    b.ofType('session-ended').map((e) => [e.flow.client.address, e.reason]),
    Array.from({ length: 5 }, () => ['127.0.0.1', 'banned']),
  );
  await Promise.all([...live, fifth].map((s) => ended(s)));
  assert.equal(await b.echoes(other), 'ping', 'the other source keeps its connection');
  assert.equal(b.app.routes.route('ssh')!.active, 1);
  const [pass] = b.ofType('verdicts-reapplied').filter((e) => e.cause === 'bans');
  assert.equal(pass?.ended, 5);

  // The sixth connection is refused before any upstream connection; on every route (bans are per source).
  const upBefore = b.up.sockets.size;
  const sixth = await b.connect();
  await ended(sixth);
  const seventh = await b.connect('127.0.0.1', 'other');
  await ended(seventh);
  assert.deepEqual(b.ofType('session-rejected').map((e) => [e.route, e.reason]), [['ssh', 'banned'], ['other', 'banned']]);
  assert.equal(b.up.sockets.size, upBefore);
  assert.equal((await b.connect('127.0.0.2')).destroyed, false, 'another source is still admitted');

  // The ban ends on the injected clock; then the source is admitted again.
  b.clock.advance(1999);
  const still = await b.connect();
  await ended(still);
  assert.equal(b.ofType('session-rejected').length, 3);
  b.clock.advance(1);
  assert.deepEqual(b.ofType('ban-removed').map((e) => [e.ban.target, e.why]), [['127.0.0.1', 'expired']]);
  const back = await b.connect();
  assert.equal(await b.echoes(back), 'ping');

  // Second offence: twice the first duration.
  for (let i = 0; i < 4; i++) await b.connect();
  await waitFor(() => b.ofType('ban-added').length === 2, 'second ban');
  const second = b.ofType('ban-added')[1]!.ban;
  assert.equal(second.expiresAt - second.createdAt, 4000);
  assert.match(second.reason, /offence 2/);
  // Third offence: capped by maxBan (5 s), not 8 s.
  b.clock.advance(4000);
  for (let i = 0; i < 5; i++) await b.connect();
  await waitFor(() => b.ofType('ban-added').length === 3, 'third ban');
  const third = b.ofType('ban-added')[2]!.ban;
  assert.equal(third.expiresAt - third.createdAt, 5000);
});

test('bans: an allowlisted source is never banned, however many connections it opens', async (t) => {
  const b = await banApp(t, { allow: '[127.0.0.1/32]' });
  for (let i = 0; i < 7; i++) assert.equal(await b.echoes(await b.connect()), 'ping');
  assert.equal(b.ofType('ban-added').length, 0);
  assert.equal(b.ofType('session-rejected').length, 0);
  assert.equal(b.app.bans!.store.size, 0);
  // Nor by hand: a ban inside the allowlist is refused.
  assert.match(String(b.app.bans!.add({ target: '127.0.0.1', source: 'api', reason: 'x', durationMs: 1000 })), /inside bans.allow 127.0.0.1\/32/);
  // The other loopback address has no such protection.
  for (let i = 0; i < 5; i++) await b.connect('127.0.0.2');
  await waitFor(() => b.ofType('ban-added').length === 1, 'the non-allowlisted source is banned');
  assert.equal(b.ofType('ban-added')[0]!.ban.target, '127.0.0.2');
});

test('bans: a rule in observe mode records the would-be ban and bans nothing', async (t) => {
  const b = await banApp(t, { rule: ', mode: observe' });
  const socks = [];
  for (let i = 0; i < 6; i++) socks.push(await b.connect());
  await waitFor(() => b.ofType('ban-added').length === 1, 'a would-ban event');
  const [e] = b.ofType('ban-added');
  assert.deepEqual([e!.observeOnly, e!.ban.target, e!.ban.source], [true, '127.0.0.1', 'rule:scanners']);
  assert.equal(b.app.bans!.store.size, 0);
  for (const s of socks) assert.equal(await b.echoes(s), 'ping', 'every connection is still relayed');
  assert.equal(b.ofType('session-ended').length, 0);
  assert.equal(b.ofType('session-rejected').length, 0);
});

test('bans: rejectionsPer counts refusals (here a per-source cap): the third refusal bans the source and its admitted connection ends', async (t) => {
  const sockets = clientSockets(t);
  const up = await echoUpstream(t);
  const { a } = await withBans(
    t,
    `
  rules:
    knockers: { when: { rejectionsPer: { count: 3, window: 1m } }, ban: 1h }
  default: [knockers]
routes:
  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    tcp: { maxConnectionsPerSource: 1 }
`,
  );
  const seen: SluiceEvent[] = [];
  a.app.events.subscribe((e) => seen.push(e));
  const count = (type: string) => seen.filter((e) => e.type === type).length;
  const connect = async () => {
    const before = count('session-started') + count('session-rejected');
    const s = net.connect({ host: '127.0.0.1', port: a.port('ssh'), allowHalfOpen: true });
    s.on('error', () => {});
    sockets.push(s);
    await once(s, 'connect');
    await waitFor(() => count('session-started') + count('session-rejected') > before, 'a verdict');
    return s;
  };
  const first = await connect();
  for (let i = 0; i < 2; i++) await connect();
  assert.equal(count('ban-added'), 0, 'two refusals are under the count');
  await connect();
  await waitFor(() => count('ban-added') === 1, 'the third refusal bans');
  await ended(first);
  const reasons = seen.flatMap((e) => (e.type === 'session-rejected' ? [e.reason] : e.type === 'session-ended' ? [`ended:${e.reason}`] : []));
  assert.deepEqual(reasons, ['limit-source-sessions', 'limit-source-sessions', 'limit-source-sessions', 'ended:banned']);
  // Refusals by the ban itself do not count towards another ban.
  for (let i = 0; i < 3; i++) await connect();
  assert.equal(count('ban-added'), 1);
  assert.deepEqual(seen.flatMap((e) => (e.type === 'session-rejected' ? [e.reason] : [])).slice(3), ['banned', 'banned', 'banned']);
});

test('bans (udp): the second new session within the window bans the source; its live UDP sessions end with banned and its next datagram is refused', async (t) => {
  const echo = await udpEcho(t);
  const { a } = await withBans(
    t,
    `
  rules:
    flood: { when: { newSessionsPer: { count: 2, window: 10s } }, ban: 1m }
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    udp: { idleTimeout: 60s }
    bans: [flood]
`,
  );
  const seen: SluiceEvent[] = [];
  a.app.events.subscribe((e) => seen.push(e));
  const c1 = await udpClient(t);
  c1.send(a.port('game'), 'one');
  assert.equal((await c1.next()).toString(), 'one');
  const c2 = await udpClient(t);
  c2.send(a.port('game'), 'two');
  await waitFor(() => seen.filter((e) => e.type === 'session-ended').length === 2, 'both UDP sessions end');
  assert.deepEqual(seen.flatMap((e) => (e.type === 'session-ended' ? [e.reason] : [])), ['banned', 'banned']);
  assert.equal(a.app.routes.route('game')!.active, 0);
  // By payload, not by count: the banned second session's own datagram may still be in flight.
  const upstreamSaw: string[] = [];
  echo.socket.on('message', (m) => void upstreamSaw.push(m.toString()));
  c1.send(a.port('game'), 'again');
  await waitFor(() => seen.some((e) => e.type === 'session-rejected'), 'the next datagram is refused');
  assert.deepEqual(seen.flatMap((e) => (e.type === 'session-rejected' ? [e.reason] : [])), ['banned']);
  assert.ok(!upstreamSaw.includes('again'), 'the refused datagram never reached the upstream');
});

test('bans: a reload applies new rules at once (observe to enforce) and the list stays', async (t) => {
  const sockets = clientSockets(t);
  const up = await echoUpstream(t);
  const dir = await tempDir(t, 'sluice-bans-');
  const file = join(dir, 'sluice.yaml');
  const cfg = (mode: string) => `
bans:
  stateDir: ${dir}
  rules:
    scanners: { when: { newSessionsPer: { count: 2, window: 10s } }, ban: 1h, mode: ${mode} }
  default: [scanners]
routes:
  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
`;
  const a = await startApp(t, cfg('observe'), { file, clock: new ManualClock() });
  a.app.bans!.add({ target: '192.0.2.1', source: 'api', reason: 'kept', durationMs: 3600_000 });
  const seen: SluiceEvent[] = [];
  a.app.events.subscribe((e) => seen.push(e));
  const connect = async () => {
    const before = seen.filter((e) => e.type === 'session-started' || e.type === 'session-rejected').length;
    const s = net.connect({ host: '127.0.0.1', port: a.port('ssh'), allowHalfOpen: true });
    s.on('error', () => {});
    sockets.push(s);
    await once(s, 'connect');
    await waitFor(() => seen.filter((e) => e.type === 'session-started' || e.type === 'session-rejected').length > before, 'a verdict');
  };
  await connect();
  await connect();
  await waitFor(() => seen.some((e) => e.type === 'ban-added'), 'a would-be ban');
  assert.equal(a.app.bans!.store.get('127.0.0.1'), undefined);
  await writeFile(file, cfg('enforce'));
  assert.ok(await a.app.reload());
  await connect();
  await connect();
  await waitFor(() => a.app.bans!.store.get('127.0.0.1') !== undefined, 'banned under the reloaded rule');
  assert.deepEqual(a.app.bans!.store.list().map((b) => b.target).sort(), ['127.0.0.1', '192.0.2.1']);
});

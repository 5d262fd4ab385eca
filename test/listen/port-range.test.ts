import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { perDatapath } from '../datapath/datapaths.js';
import { startNode as startNodeJs, config } from '../helpers/node.js';
import { waitFor } from '../helpers/net.js';
import { bindTcpRange, bindUdpRange, withFreeRange } from '../helpers/port-range.js';
import type { TestContext } from 'node:test';

const { test: both, startNode } = perDatapath();

const closeAll = (socks: dgram.Socket[]) => Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));

/** UDP echo servers on `count` ports from `base`; each reply is `<its port>:<datagram>`. */
const udpEchoRange = (base: number, count: number) =>
  bindUdpRange(base, count, (s, msg, r) => s.send(Buffer.concat([Buffer.from(`${s.address().port}:`), msg]), r.port, r.address));

/** A node with one range route `rtp` and an echo range behind it, on a free range (retried). */
async function rangeNode(t: TestContext, count: number, extra: string, start = startNode) {
  return withFreeRange(2 * count, async (base) => {
    const upBase = base + count;
    const echoes = await udpEchoRange(upBase, count);
    try {
      const yaml = `routes:\n  rtp:\n    listen: "udp://127.0.0.1:${base}-${base + count - 1}"\n    upstream: "127.0.0.1:${upBase}-${upBase + count - 1}"\n${extra}`;
      const n = await start(t, yaml);
      t.after(() => closeAll(echoes));
      return { ...n, base, upBase };
    } catch (err) {
      await closeAll(echoes);
      throw err;
    }
  });
}

/** `count` clients on 127.0.0.1:0; client i sends to listen port base + i. */
async function clients(t: TestContext, count: number) {
  const socks: dgram.Socket[] = [];
  const got = new Map<number, string>();
  for (let i = 0; i < count; i++) {
    const s = dgram.createSocket('udp4');
    s.on('message', (m) => got.set(i, m.toString()));
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    socks.push(s);
  }
  t.after(() => closeAll(socks));
  return { socks, got };
}

both('port range: 1,000 ports, one client each, every datagram echoed by the offset-mapped upstream port', async (t) => {
  const N = 1000;
  const n = await rangeNode(t, N, '    udp: { maxSessions: 2000, maxSessionsPerSource: 2000, rate: { perSecond: 0, burst: 0 }, ratePerSource: { perSecond: 0, burst: 0 } }\n');
  const { socks, got } = await clients(t, N);
  // Resent until answered: a datagram lost under load is sent again, bounded by waitFor.
  const sendMissing = () => socks.forEach((s, i) => !got.has(i) && s.send(`c${i}`, n.base + i, '127.0.0.1'));
  sendMissing();
  const timer = setInterval(sendMissing, 500);
  try {
    await waitFor(() => got.size === N, `${N} echoes`, 30_000);
  } finally {
    clearInterval(timer);
  }
  for (let i = 0; i < N; i++) assert.equal(got.get(i), `${n.upBase + i}:c${i}`, `client ${i}`);
  const route = n.node.route('rtp')!;
  assert.equal(route.active, N, 'one session per port, under one route');
  const sessions = route.sessions();
  assert.equal(sessions.length, N);
  for (const s of sessions) {
    assert.equal(s.route, 'rtp');
    assert.equal(s.upstream!.port - n.upBase, s.listenPort! - n.base, 'upstream port = first + offset of the listen port');
  }
  const started = n.ofType('session-started');
  assert.equal(new Set(started.map((e) => e.flow.listenPort)).size, N, 'every start event names its listen port');
  assert.ok(started.every((e) => e.flow.route === 'rtp'));
});

test('port range: the route cap is shared by all ports (cap 2, three clients on three ports -> third refused)', async (t) => {
  const n = await rangeNode(t, 3, '    udp: { maxSessions: 2 }\n', startNodeJs);
  const { socks, got } = await clients(t, 3);
  for (let i = 0; i < 2; i++) socks[i]!.send(`c${i}`, n.base + i, '127.0.0.1');
  await waitFor(() => got.size === 2, 'two echoes');
  socks[2]!.send('c2', n.base + 2, '127.0.0.1');
  await waitFor(() => n.ofType('session-rejected').length === 1, 'a refusal');
  const [rej] = n.ofType('session-rejected');
  assert.equal(rej!.reason, 'limit-route-sessions');
  assert.equal(rej!.route, 'rtp');
  assert.equal(rej!.client.port, socks[2]!.address().port);
  assert.equal(n.node.route('rtp')!.active, 2);
  assert.equal(got.has(2), false);
});

test('port range: TCP, each listen port reaches its own upstream port', async (t) => {
  const N = 20;
  const n = await withFreeRange(2 * N, async (base) => {
    const upBase = base + N;
    const servers = await bindTcpRange(upBase, N, (srv, s) => s.end(`${(srv.address() as net.AddressInfo).port}`));
    try {
      const node = await startNodeJs(t, `routes:\n  web:\n    listen: "tcp://127.0.0.1:${base}-${base + N - 1}"\n    upstream: "127.0.0.1:${upBase}-${upBase + N - 1}"\n`);
      t.after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));
      return { ...node, base, upBase };
    } catch (err) {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      throw err;
    }
  });
  for (let i = 0; i < N; i++) {
    const c = net.connect(n.base + i, '127.0.0.1');
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d));
    await once(c, 'end');
    c.destroy();
    assert.equal(Buffer.concat(chunks).toString(), String(n.upBase + i), `port ${n.base + i}`);
  }
  await waitFor(() => n.ofType('session-ended').length === N, 'every connection recorded');
  const ports = n.ofType('session-started').map((e) => e.flow.listenPort).sort((a, b) => a! - b!);
  assert.deepEqual(ports, Array.from({ length: N }, (_, i) => n.base + i));
});

test('port range: one upstream port takes every listen port; a reload that moves the range binds only the new ports', async (t) => {
  const n = await withFreeRange(8, async (base) => {
    const echoes = await udpEchoRange(base + 7, 1);
    try {
      const node = await startNodeJs(t, `routes:\n  rtp:\n    listen: "udp://127.0.0.1:${base}-${base + 3}"\n    upstream: "127.0.0.1:${base + 7}"\n`);
      t.after(() => closeAll(echoes));
      return { ...node, base };
    } catch (err) {
      await closeAll(echoes);
      throw err;
    }
  });
  const { socks, got } = await clients(t, 4);
  socks.forEach((s, i) => s.send(`c${i}`, n.base + i, '127.0.0.1'));
  await waitFor(() => got.size === 4, 'four echoes');
  for (let i = 0; i < 4; i++) assert.equal(got.get(i), `${n.base + 7}:c${i}`);
  // Moves the range from base..base+3 to base+2..base+5: ports base+2, base+3 are kept (with their
  // sessions), base+4, base+5 are bound, base, base+1 are released (their sessions end).
  const summary = await n.node.reload(config(`routes:\n  rtp:\n    listen: "udp://127.0.0.1:${n.base + 2}-${n.base + 5}"\n    upstream: "127.0.0.1:${n.base + 7}"\n`));
  assert.deepEqual([summary.changed, summary.rebuilt], [['rtp'], []], 'a moved range is rebound in place, not rebuilt');
  const route = n.node.route('rtp')!;
  assert.equal(route.active, 2, 'the sessions of the two kept ports live on');
  assert.deepEqual(n.ofType('session-ended').map((e) => [e.flow.listenPort, e.reason]).sort(), [[n.base, 'route-removed'], [n.base + 1, 'route-removed']]);
  got.clear();
  socks[3]!.send('again', n.base + 3, '127.0.0.1');
  await waitFor(() => got.has(3), 'a kept port still answers');
  assert.equal(n.ofType('session-started').length, 4, 'through its old session');
  const late = dgram.createSocket('udp4');
  late.on('message', (m) => got.set(5, m.toString()));
  late.bind(0, '127.0.0.1');
  await once(late, 'listening');
  t.after(() => late.close());
  late.send('c5', n.base + 5, '127.0.0.1');
  await waitFor(() => got.has(5), 'the new port answers');
  assert.equal(got.get(5), `${n.base + 7}:c5`);
  const probe = dgram.createSocket('udp4');
  t.after(() => probe.close());
  probe.bind(n.base, '127.0.0.1');
  await once(probe, 'listening');
});

test('port range: TCP connection cap shared by the ports (cap 1: a second connection on another port is refused)', async (t) => {
  const n = await withFreeRange(3, async (base) => {
    const servers = await bindTcpRange(base + 2, 1, () => undefined);
    try {
      const node = await startNodeJs(t, `routes:\n  web:\n    listen: "tcp://127.0.0.1:${base}-${base + 1}"\n    upstream: "127.0.0.1:${base + 2}"\n    tcp: { maxConnections: 1 }\n`);
      t.after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));
      return { ...node, base };
    } catch (err) {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      throw err;
    }
  });
  const first = net.connect(n.base, '127.0.0.1');
  t.after(() => first.destroy());
  await waitFor(() => n.ofType('session-started').length === 1, 'the first connection relayed');
  const second = net.connect(n.base + 1, '127.0.0.1');
  second.on('error', () => undefined);
  t.after(() => second.destroy());
  await waitFor(() => n.ofType('session-rejected').length === 1, 'the second refused');
  assert.equal(n.ofType('session-rejected')[0]!.reason, 'limit-route-sessions');
  assert.equal(n.node.route('web')!.active, 1);
});

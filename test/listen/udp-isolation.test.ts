import assert from 'node:assert/strict';
import { fork, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { perDatapath } from '../datapath/datapaths.js';
import { waitFor } from '../helpers/net.js';
import { havePeer } from '../helpers/peers.js';
import { burstWhileBlocked, floodClients, nextMessage } from '../helpers/udp-flood-clients.js';
import type { UdpRoute } from '../../src/listen/udp-route.js';

// Every test here runs once per UDP datapath (js, native). Only the native one can give a client
// its own socket; on the js one the same traffic must still be carried, as before.
const { test, startNode, datapathOf } = perDatapath();

/** Datagrams/s above which a client gets its own socket here: the warm-up flood (WARM_RATE) is 4 times that. */
const ISOLATE_ABOVE = 500;

/** An echo upstream with a large receive buffer: what the relay forwards after the block arrives at once. */
async function echo(t: TestContext, host: string): Promise<number> {
  const s = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(0, host);
  await once(s, 'listening');
  t.after(() => s.close());
  return s.address().port;
}

const fds = () => readdirSync('/proc/self/fd').length;

// The listener's address and the clients' (a dual-stack `::` listener sees IPv4 clients as ::ffff:a.b.c.d).
for (const [listen, host] of [['127.0.0.1', '127.0.0.1'], ['::1', '::1'], ['::', '127.0.0.1']] as const) {
  test(`udp isolation (listener ${listen}, clients ${host}): a flooding client gets its own socket, its excess is dropped there, a second client's datagrams get through, and the socket goes with the session`, async (t) => {
    const native = datapathOf(t)?.kind === 'native';
    const echoPort = await echo(t, host);
    const at = host.includes(':') ? `[${host}]` : host;
    const { node, port, ofType } = await startNode(t, `
routes:
  game:
    listen: "udp://${listen.includes(':') ? `[${listen}]` : listen}:0"
    upstream: "${at}:${echoPort}"
    udp: { idleTimeout: 2s, isolateAbove: ${ISOLATE_ABOVE}, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }
`);
    const route = node.route('game') as unknown as UdpRoute;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-isolate-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'clients.cjs'), floodClients);
    const child = fork(join(dir, 'clients.cjs'), [String(port('game')), host, host.includes(':') ? 'udp6' : 'udp4'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    t.after(() => child.kill());
    const bound = await nextMessage(child, 'bound');
    const baseline = fds(); // the route's listener, the child's channel; no session yet
    const isolation = (change: string) => ofType('udp-isolation').filter((e) => e.client.port === bound.flood && e.change === change);

    child.send('hello');
    assert.equal((await nextMessage(child, 'hello')).got, 1, 'the second client is answered before the flood');
    child.send('warm');
    if (native) {
      await waitFor(() => isolation('isolated').length === 1, 'the flooder isolated', 5000);
      assert.equal(isolation('isolated')[0]!.reason, 'over-rate');
      assert.equal(route.isolated, 1);
      assert.equal(ofType('udp-isolation').filter((e) => e.client.port === bound.victim).length, 0, 'the second client keeps the shared socket');
    } else {
      await new Promise((r) => setTimeout(r, 1000));
    }

    const kernelDrops = () => ofType('datagrams-dropped').filter((e) => e.reason === 'isolated-kernel').reduce((n, e) => n + e.count, 0);
    const victimIn = () => route.sessions().find((x) => x.client.port === bound.victim)?.packetsFromClient ?? 0;
    await burstWhileBlocked(t, child, native, kernelDrops, datapathOf(t)?.kind ?? 'js', victimIn);
    if (!native) {
      assert.equal(ofType('udp-isolation').length, 0, 'the js datapath never isolates');
    }

    // Both sessions idle out; the flooder's own socket goes with its session (or before, once calm).
    await waitFor(() => route.active === 0, 'sessions idle out', 8000);
    if (native) {
      assert.equal(isolation('released').length, 1);
      assert.ok(['calm', 'session-ended'].includes(isolation('released')[0]!.reason), isolation('released')[0]!.reason);
    }
    assert.equal(route.isolated, 0);
    await waitFor(() => fds() === baseline, `descriptors back to ${baseline} (now ${fds()})`, 3000);
  });
}

/** Binds `port` on 127.0.0.1 with SO_REUSEPORT (Node 20's dgram cannot ask for it): the errno, 0 when bound. */
function bindWithReusePort(port: number): number {
  const py = `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\ntry:\n  s.bind(('127.0.0.1', ${port}))\n  print(0)\nexcept OSError as e:\n  print(e.errno)`;
  return Number(spawnSync('python3', ['-c', py], { encoding: 'utf8' }).stdout.trim());
}

test('udp isolation: two clients each get their own socket, the port stays exclusive (with or without SO_REUSEPORT), and a route close releases them (its sessions end first)', async (t) => {
  const native = datapathOf(t)?.kind === 'native';
  if (!havePeer(t, 'python3', 'python3-minimal')) return;
  const echoPort = await echo(t, '127.0.0.1');
  const { node, port, ofType } = await startNode(t, `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echoPort}
    udp: { isolateAbove: 1, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }
`);
  const route = node.route('game') as unknown as UdpRoute;
  const cs = await Promise.all([0, 1].map(async () => {
    const c = dgram.createSocket('udp4');
    c.bind(0, '127.0.0.1');
    await once(c, 'listening');
    t.after(() => c.close());
    const got = { n: 0 };
    c.on('message', () => got.n++);
    return { c, got };
  }));
  const baseline = fds();
  const tick = setInterval(() => cs.forEach(({ c }) => c.send('x', port('game'), '127.0.0.1')), 5);
  t.after(() => clearInterval(tick));
  await waitFor(() => cs.every(({ got }) => got.n > 5), 'answers');
  if (native) {
    await waitFor(() => route.isolated === 2, `both isolated (${route.isolated}; ${JSON.stringify(ofType('udp-isolation').map((e) => e.reason))})`, 5000);
    const before = cs.map(({ got }) => got.n);
    await waitFor(() => cs.every(({ got }, i) => got.n > before[i]! + 5), 'answers through their own sockets');
  }
  // No other socket can take the port while the route has it: not with SO_REUSEPORT, not without.
  assert.equal(bindWithReusePort(port('game')), 98 /* EADDRINUSE */);
  const other = dgram.createSocket('udp4');
  const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    other.once('error', resolve);
    other.bind({ port: port('game'), address: '127.0.0.1', exclusive: true }, () => resolve(undefined));
  });
  other.close();
  assert.equal(err?.code, 'EADDRINUSE');
  clearInterval(tick);
  await node.route('game')!.close('shutdown');
  const events = ofType('udp-isolation');
  if (native) assert.deepEqual(events.map((e) => `${e.change}/${e.reason}`).sort(), ['isolated/over-rate', 'isolated/over-rate', 'released/session-ended', 'released/session-ended']);
  else assert.equal(events.length, 0);
  assert.equal(route.isolated, 0);
  await waitFor(() => fds() <= baseline - 1, `the listener, the sessions' sockets and the clients' own closed (${fds()} descriptors, ${baseline} before the first datagram)`);
});

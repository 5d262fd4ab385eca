import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { config } from '../helpers/node.js';
import { perDatapath } from '../datapath/datapaths.js';
import { readAll, tcpConnect, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { RouteSet } from '../../src/root/route-set.js';
import { EventStream } from '../../src/observe/events.js';
import { systemClock } from '../../src/core/clock.js';
import { DirectStreamDialer } from '../../src/upstream/direct/tcp-dialer.js';
import { DirectDatagramDialer } from '../../src/upstream/direct/udp-dialer.js';
import { isSluiceError } from '../../src/core/errors.js';
import net from 'node:net';

// The tests with live UDP sessions run once per datapath (js, native).
const { test: udpTest, startNode } = perDatapath();

const yaml = (udpUp: number, tcpUp: number, extra = '') => `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${udpUp}
    udp: { idleTimeout: 30s }
  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${tcpUp}
${extra}
lifecycle: { drainTimeout: 5s }
`;

udpTest('reload: a route with the same listen keeps its socket, its live UDP session and its live TCP connection', async (t) => {
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const n = await startNode(t, yaml(echo.port, up.port));
  const udpPort = n.port('game');
  const tcpPort = n.port('ssh');
  const c = await udpClient(t);
  c.send(udpPort, 'before');
  assert.equal((await c.next()).toString(), 'before');
  const sock = await tcpConnect(t, tcpPort);
  sock.write('one');
  assert.equal((await once(sock, 'data'))[0].toString(), 'one');

  const summary = await n.node.reload(
    config(`${yaml(echo.port, up.port, `  extra:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}`).replace('idleTimeout: 30s', 'idleTimeout: 45s')}`),
  );
  assert.deepEqual(summary.changed, ['game']);
  assert.deepEqual(summary.added, ['extra']);
  assert.deepEqual(summary.rebuilt, []);
  assert.equal(n.port('game'), udpPort, 'same socket');
  assert.equal(n.node.route('game')!.config.udp.idleTimeoutMs, 45_000, 'new settings in place');

  c.send(udpPort, 'after');
  assert.equal((await c.next()).toString(), 'after');
  sock.write('two');
  assert.equal((await once(sock, 'data'))[0].toString(), 'two');
  assert.equal(echo.sources.size, 1, 'the UDP session kept its upstream socket (same source port)');
  assert.equal(n.ofType('session-started').length, 2, 'no new session or connection was made');
  assert.equal(n.ofType('session-ended').length, 0);
});

udpTest('reload: a changed listen is rebuilt and the old listener drains; a removed route drains', async (t) => {
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const n = await startNode(t, yaml(echo.port, up.port));
  const oldTcp = n.port('ssh');
  const sock = await tcpConnect(t, oldTcp);
  sock.write('live');
  await once(sock, 'data');

  // ssh moves to another listen address (IPv6 loopback would need ::1; a new port 0 spelled differently is not a change).
  const next = config(`
routes:
  ssh:
    listen: tcp://127.0.0.2:0
    upstream: 127.0.0.1:${up.port}
lifecycle: { drainTimeout: 5s }
`);
  const summary = await n.node.reload(next);
  assert.deepEqual(summary.rebuilt, ['ssh']);
  assert.deepEqual(summary.removed, ['game']);
  assert.equal(n.node.route('ssh')!.local.address, '127.0.0.2');
  // The old connection still works while its listener drains; the old port takes no new clients.
  sock.write('still');
  assert.equal((await once(sock, 'data'))[0].toString(), 'still');
  await new Promise<void>((resolve) => {
    const probe = net.connect({ host: '127.0.0.1', port: oldTcp });
    probe.on('error', () => resolve());
    probe.on('connect', () => {
      probe.destroy();
      assert.fail('the drained listener accepted a new connection');
    });
  });
  const fresh = net.connect({ host: '127.0.0.2', port: n.port('ssh'), allowHalfOpen: true });
  t.after(() => fresh.destroy());
  await once(fresh, 'connect');
  fresh.end('new');
  assert.equal((await readAll(fresh)).toString(), 'new');
  sock.end();
  await waitFor(() => n.ofType('route-down').some((e) => e.route === 'ssh'), 'old ssh listener closed after its last connection');
});

udpTest('shutdown: live sessions drain until they end or the deadline passes', async (t) => {
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const n = await startNode(t, yaml(echo.port, up.port));
  const sock = await tcpConnect(t, n.port('ssh'));
  sock.write('x');
  await once(sock, 'data');
  const c = await udpClient(t);
  c.send(n.port('game'), 'y');
  await c.next();
  const started = Date.now();
  const done = n.node.shutdown(400);
  // During the drain, the live connection still relays.
  sock.write('during');
  assert.equal((await once(sock, 'data'))[0].toString(), 'during');
  await done;
  const took = Date.now() - started;
  assert.ok(took >= 350 && took < 3000, `drain took ${took}ms`);
  const reasons = n.ofType('session-ended').map((e) => e.reason).sort();
  assert.deepEqual(reasons, ['drain-deadline', 'drain-deadline']);
});

test('start: a bind failure names the route and address, and leaves no other route listening', async (t) => {
  const blocker = net.createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  t.after(() => blocker.close());
  const taken = (blocker.address() as net.AddressInfo).port;
  const free = net.createServer();
  free.listen(0, '127.0.0.1');
  await once(free, 'listening');
  const freePortNumber = (free.address() as net.AddressInfo).port;
  await new Promise((r) => free.close(r));
  const cfg = config(`
routes:
  ok:
    listen: tcp://127.0.0.1:${freePortNumber}
    upstream: 127.0.0.1:9
  clash:
    listen: tcp://127.0.0.1:${taken}
    upstream: 127.0.0.1:9
`);
  await assert.rejects(
    RouteSet.start(cfg, {
      clock: systemClock,
      events: new EventStream(),
      streamDialer: new DirectStreamDialer(),
      datagramDialer: new DirectDatagramDialer(),
    }),
    (err: Error) => isSluiceError(err, 'SLUICE_ERR_BIND') && err.message.includes('"clash"') && err.message.includes(`tcp://127.0.0.1:${taken}`) && err.message.includes('EADDRINUSE'),
  );
  // The route that did bind was closed again.
  const again = net.createServer();
  again.listen(freePortNumber, '127.0.0.1');
  await once(again, 'listening');
  again.close();
});

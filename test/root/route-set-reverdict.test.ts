import assert from 'node:assert/strict';
import { once } from 'node:events';
import { config } from '../helpers/node.js';
import { perDatapath } from '../datapath/datapaths.js';
import { tcpConnect, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';

// Live sessions are judged again when a reload changes the ACL (docs/access-control.md, "Live sessions").
const { test, startNode } = perDatapath();

const yaml = (udpUp: number, tcpUp: number, acl = '') => `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${udpUp}
    udp: { idleTimeout: 60s }
${acl ? `    acl: ${acl}\n` : ''}  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${tcpUp}
${acl ? `    acl: ${acl}\n` : ''}`;

async function liveSessions(t: import('node:test').TestContext, startAcl = '') {
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const n = await startNode(t, yaml(echo.port, up.port, startAcl));
  const c = await udpClient(t);
  c.send(n.port('game'), 'hello');
  assert.equal((await c.next()).toString(), 'hello');
  const sock = await tcpConnect(t, n.port('ssh'));
  sock.write('one');
  assert.equal((await once(sock, 'data'))[0].toString(), 'one');
  assert.equal(n.node.route('game')!.active, 1);
  assert.equal(n.node.route('ssh')!.active, 1);
  return { echo, up, n, c, sock };
}

test('reverdict: a reload whose ACL denies 127.0.0.1 ends the live UDP session and TCP connection with acl-cidr, at once', async (t) => {
  const { echo, up, n, sock } = await liveSessions(t);
  const closed = once(sock, 'end'); // the client allows half-open: the relay's FIN arrives as 'end'
  const started = Date.now();
  await n.node.reload(config(yaml(echo.port, up.port, '{ deny: [127.0.0.1/32] }')));
  // The session tables are judged synchronously inside reload; a TCP relay reports its end once both sockets closed.
  assert.equal(n.node.route('game')!.active, 0, 'the UDP session ended during reload');
  await closed;
  await waitFor(() => n.ofType('session-ended').length === 2, 'both ends reported');
  const elapsedMs = Date.now() - started;
  t.diagnostic(`reload to both sessions ended: ${elapsedMs} ms`);
  assert.ok(elapsedMs < 1000, `client connection closed ${elapsedMs} ms after the reload began`);
  assert.equal(n.node.route('ssh')!.active, 0);
  await waitFor(() => up.sockets.size === 0, 'the upstream connection closed too');

  const ended = n.ofType('session-ended');
  assert.deepEqual(ended.map((e) => [e.flow.proto, e.reason, e.detail]).sort(), [
    ['tcp', 'acl-cidr', 'deny 127.0.0.1/32'],
    ['udp', 'acl-cidr', 'deny 127.0.0.1/32'],
  ]);
  const [pass] = n.ofType('verdicts-reapplied');
  assert.deepEqual(pass && { cause: pass.cause, checked: pass.checked, ended: pass.ended, wouldEnd: pass.wouldEnd }, { cause: 'reload', checked: 2, ended: 2, wouldEnd: 0 });
});

test('reverdict: the UDP client that keeps sending after the ban gets a rejection, not its old session', async (t) => {
  const { echo, up, n, c } = await liveSessions(t);
  await n.node.reload(config(yaml(echo.port, up.port, '{ deny: [127.0.0.1/32] }')));
  const before = echo.received;
  c.send(n.port('game'), 'still here');
  await waitFor(() => n.ofType('session-rejected').length === 1, 'the next datagram is judged as a new client');
  assert.equal(n.ofType('session-rejected')[0]!.reason, 'acl-cidr');
  assert.equal(echo.received, before, 'nothing more reached the upstream');
  assert.equal(n.node.route('game')!.active, 0);
});

test('reverdict: an allowed client keeps its sessions across the same reload', async (t) => {
  const { echo, up, n, c, sock } = await liveSessions(t);
  await n.node.reload(config(yaml(echo.port, up.port, '{ deny: [192.0.2.0/24] }')));
  c.send(n.port('game'), 'still');
  assert.equal((await c.next()).toString(), 'still');
  sock.write('two');
  assert.equal((await once(sock, 'data'))[0].toString(), 'two');
  assert.equal(n.ofType('session-ended').length, 0);
  assert.deepEqual(
    n.ofType('verdicts-reapplied').map((e) => [e.checked, e.ended, e.wouldEnd]),
    [[2, 0, 0]],
  );
});

test('reverdict: observe-only records would-end once per session and keeps the sessions', async (t) => {
  const { echo, up, n, c, sock } = await liveSessions(t);
  const observe = '{ deny: [127.0.0.1/32], observeOnly: true }';
  await n.node.reload(config(yaml(echo.port, up.port, observe)));
  await n.node.reload(config(yaml(echo.port, up.port, observe)));
  const would = n.ofType('session-would-end');
  assert.deepEqual(would.map((e) => [e.flow.proto, e.reason, e.detail]).sort(), [
    ['tcp', 'acl-cidr', 'deny 127.0.0.1/32'],
    ['udp', 'acl-cidr', 'deny 127.0.0.1/32'],
  ]);
  assert.deepEqual(
    n.ofType('verdicts-reapplied').map((e) => [e.checked, e.ended, e.wouldEnd]),
    [
      [2, 0, 2],
      [2, 0, 0],
    ],
    'the second reload finds the same sessions already recorded',
  );
  c.send(n.port('game'), 'kept');
  assert.equal((await c.next()).toString(), 'kept');
  sock.write('kept');
  assert.equal((await once(sock, 'data'))[0].toString(), 'kept');
  assert.equal(n.ofType('session-ended').length, 0);

  // Turning enforcement on ends them.
  await n.node.reload(config(yaml(echo.port, up.port, '{ deny: [127.0.0.1/32] }')));
  await waitFor(() => n.ofType('session-ended').length === 2, 'both ended');
  assert.deepEqual(n.ofType('session-ended').map((e) => e.reason), ['acl-cidr', 'acl-cidr']);
});

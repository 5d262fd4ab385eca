import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { freePort, readAll, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { runSluice } from '../helpers/cli.js';
import { tempDir } from '../helpers/peers.js';

const sluice = runSluice;

test('cli: --version, --help, and usage errors', async (t) => {
  const v = sluice(t, ['--version']);
  assert.equal(await v.exited, 0);
  assert.match(v.out(), /^sluice \d+\.\d+\.\d+\n$/);
  const h = sluice(t, ['--help']);
  assert.equal(await h.exited, 0);
  assert.match(h.out(), /sluice run FILE/);
  const bad = sluice(t, ['frobnicate']);
  assert.equal(await bad.exited, 2);
  const flag = sluice(t, ['check', '--conifg', 'x.yaml']);
  assert.equal(await flag.exited, 2);
  assert.match(flag.err(), /unknown flag --conifg/);
  assert.doesNotMatch(flag.err(), /at .*\.js:\d+/, 'no stack trace');
});

test('cli: check lists every problem with path and line and exits 3; a valid file exits 0', async (t) => {
  const dir = await tempDir(t);
  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, 'routes:\n  dns:\n    listen: udp://0.0.0.0:5353\n    upstream: nowhere\n    extra: 1\n');
  const r = sluice(t, ['check', '--config', bad]);
  assert.equal(await r.exited, 3);
  assert.match(r.err(), /routes\.dns\.upstream \(line 4\): expected host:port/);
  assert.match(r.err(), /routes\.dns\.extra \(line 5\): unknown key "extra"/);
  const good = join(dir, 'good.yaml');
  await writeFile(good, 'routes:\n  dns:\n    listen: udp://0.0.0.0:5353\n    upstream: 127.0.0.1:53\n');
  const ok = sluice(t, ['check', '--config', good]);
  assert.equal(await ok.exited, 0);
  const missing = sluice(t, ['check', '--config', join(dir, 'nope.yaml')]);
  assert.equal(await missing.exited, 3);
  assert.match(missing.err(), /cannot read config file .*nope\.yaml: ENOENT/);
});

test('cli: run serves routes, reloads on SIGHUP (keeping the old config when the new one is invalid), exits 0 on SIGTERM', async (t) => {
  const dir = await tempDir(t);
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const [udpPort, tcpPort] = [await freePort('udp'), await freePort('tcp')];
  const file = join(dir, 'sluice.yaml');
  const yaml = (more = '') => `routes:
  game:
    listen: udp://127.0.0.1:${udpPort}
    upstream: 127.0.0.1:${echo.port}
${more}accessLog: { output: ${join(dir, 'access.log')} }
lifecycle: { drainTimeout: 1s }
`;
  await writeFile(file, yaml());
  const p = sluice(t, ['run', '--config', file]);
  const c = await answeringUdpClient(t, udpPort);
  assert.equal(c.inbox[0]!.toString(), 'ping');

  await writeFile(file, yaml(`  ssh:\n    listen: tcp://127.0.0.1:${tcpPort}\n    upstream: 127.0.0.1:${up.port}\n`));
  p.child.kill('SIGHUP');
  const s = await retryConnect(tcpPort);
  s.end('via reload');
  assert.equal((await readAll(s)).toString(), 'via reload');

  await writeFile(file, 'routes:\n  game:\n    listen: udp://127.0.0.1:bad\n');
  p.child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 300));
  c.inbox.length = 0;
  c.send(udpPort, 'still');
  assert.equal((await c.next()).toString(), 'still', 'the running config stays after an invalid reload');

  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});

test('cli: a port already in use fails start with exit 4 naming the route and address', async (t) => {
  const dir = await tempDir(t);
  const blocker = net.createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  t.after(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const file = join(dir, 'sluice.yaml');
  await writeFile(file, `routes:\n  web:\n    listen: tcp://127.0.0.1:${port}\n    upstream: 127.0.0.1:9\n`);
  const p = sluice(t, ['run', '--config', file]);
  assert.equal(await p.exited, 4);
  assert.match(p.err(), new RegExp(`route "web": cannot listen on tcp://127\\.0\\.0\\.1:${port}: EADDRINUSE`));
});

/** A UDP client that has had an answer through the route on `port` (which may still be starting). */
async function answeringUdpClient(t: import('node:test').TestContext, port: number) {
  const c = await udpClient(t);
  await waitFor(() => {
    c.send(port, 'ping');
    return c.inbox.length > 0;
  }, 'the udp route to answer');
  return c;
}

async function retryConnect(port: number): Promise<net.Socket> {
  for (let i = 0; i < 100; i++) {
    try {
      const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      await once(s, 'connect');
      return s;
    } catch {
      await new Promise((r) => setTimeout(r, 30));
    }
  }
  throw new Error(`nothing listens on ${port}`);
}

test('cli: with lifecycle.watch the config file is reloaded when it changes, without a signal', async (t) => {
  const dir = await tempDir(t);
  const up = await tcpServer(t);
  const [first, second] = [await freePort('tcp'), await freePort('tcp')];
  const file = join(dir, 'sluice.yaml');
  const yaml = (more = '') => `routes:
  a:
    listen: tcp://127.0.0.1:${first}
    upstream: 127.0.0.1:${up.port}
${more}accessLog: { output: off }
lifecycle: { drainTimeout: 1s, watch: true }
`;
  await writeFile(file, yaml());
  const p = sluice(t, ['run', '--config', file]);
  const a = await retryConnect(first);
  a.end('a');
  assert.equal((await readAll(a)).toString(), 'a');
  await writeFile(file, yaml(`  b:\n    listen: tcp://127.0.0.1:${second}\n    upstream: 127.0.0.1:${up.port}\n`));
  const b = await retryConnect(second);
  b.end('b');
  assert.equal((await readAll(b)).toString(), 'b');
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});

test('cli: SIGHUP with an ACL that denies 127.0.0.1 ends the live UDP session and TCP connection, logged with the reason', async (t) => {
  const dir = await tempDir(t);
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const [udpPort, tcpPort] = [await freePort('udp'), await freePort('tcp')];
  const file = join(dir, 'sluice.yaml');
  const log = join(dir, 'access.log');
  const yaml = (acl = '') => `${acl}routes:
  game:
    listen: udp://127.0.0.1:${udpPort}
    upstream: 127.0.0.1:${echo.port}
    udp: { idleTimeout: 60s }
  ssh:
    listen: tcp://127.0.0.1:${tcpPort}
    upstream: 127.0.0.1:${up.port}
accessLog: { output: ${log} }
lifecycle: { drainTimeout: 1s }
`;
  await writeFile(file, yaml());
  const p = sluice(t, ['run', '--config', file]);
  const c = await answeringUdpClient(t, udpPort);
  const s = await retryConnect(tcpPort);
  t.after(() => s.destroy()); // half-open: the relay's FIN leaves this side open
  s.write('live');
  assert.equal(String((await once(s, 'data'))[0]), 'live');

  await writeFile(file, yaml('acl: { deny: [127.0.0.1/32] }\n'));
  const ended = once(s, 'end');
  const hupAt = Date.now();
  p.child.kill('SIGHUP');
  await ended;
  const ms = Date.now() - hupAt;
  t.diagnostic(`SIGHUP to the TCP connection's FIN: ${ms} ms`);
  assert.ok(ms < 1000, `${ms} ms`);
  await waitFor(() => /"verdicts changed; live sessions judged again"/.test(p.err()), 'the ops log line');
  assert.match(p.err(), /"cause":"reload","checked":2,"ended":2/);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
  const ends = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'end');
  assert.deepEqual(ends.map((l) => [l.proto, l.reason, l.detail]).sort(), [
    ['tcp', 'acl-cidr', 'deny 127.0.0.1/32'],
    ['udp', 'acl-cidr', 'deny 127.0.0.1/32'],
  ]);
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { freePort, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { runSluice } from '../helpers/cli.js';
import { tempDir } from '../helpers/peers.js';

const sluice = (t: TestContext, args: string[]) => runSluice(t, args, { SLUICE_ADMIN: '', SLUICE_ADMIN_TOKEN: '' });

test('cli: run, check and demo --help print their own usage (and `help COMMAND` does too), exit 0', async (t) => {
  for (const cmd of ['run', 'check', 'demo']) {
    for (const args of [[cmd, '--help'], [cmd, '-h'], ['help', cmd]]) {
      const r = sluice(t, args);
      assert.equal(await r.exited, 0, args.join(' '));
      assert.match(r.out(), new RegExp(`^Usage: sluice ${cmd}\\b`), `${args.join(' ')} prints its own usage`);
      assert.doesNotMatch(r.out(), /sluice udpexposer/, 'not the generic help');
    }
  }
  for (const [topic, first] of [['status', /^Usage: sluice status/], ['udpexposer', /^Usage: sluice udpexposer/]] as const) {
    const r = sluice(t, ['help', topic]);
    assert.equal(await r.exited, 0);
    assert.match(r.out(), first);
  }
  const generic = sluice(t, ['--help']);
  assert.equal(await generic.exited, 0);
  assert.match(generic.out(), /sluice check FILE/);
});

test('cli: check and run take the config file as a positional argument; conflicts are usage errors', async (t) => {
  const dir = await tempDir(t);
  const echo = await udpEcho(t);
  const port = await freePort('udp');
  const file = join(dir, 'sluice.yaml');
  await writeFile(file, `routes:\n  dns:\n    listen: udp://127.0.0.1:${port}\n    upstream: 127.0.0.1:${echo.port}\naccessLog: { output: off }\nlifecycle: { drainTimeout: 1s }\n`);

  const ok = sluice(t, ['check', file]);
  assert.equal(await ok.exited, 0, ok.err());
  assert.equal(ok.out(), `${file}: ok, 1 route(s)\n`);
  const same = sluice(t, ['check', '--config', file, file]);
  assert.equal(await same.exited, 0, 'the same file twice is fine');

  const run = sluice(t, ['run', file]);
  const c = await udpClient(t);
  await waitFor(() => {
    c.send(port, 'q');
    return c.inbox.length > 0;
  }, 'the route of the positional file to answer', 10_000);
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);

  for (const [args, want] of [
    [['check'], /sluice check: which config file\? sluice check FILE/],
    [['check', file, 'other.yaml'], /takes one config file; also got "other\.yaml"/],
    [['run', '--config', file, 'other.yaml'], /two config files given/],
    [['demo', file], /demo takes no config file/],
  ] as const) {
    const r = sluice(t, [...args]);
    assert.equal(await r.exited, 2, args.join(' '));
    assert.match(r.err(), want);
    assert.match(r.err(), /--help for usage/);
  }
});

/**
 * Ports the Fetch standard bars for browsers ("bad port"), above 1024 so a test can bind one.
 * `sluice status` must reach an admin listener on any of them.
 */
const FETCH_BAD_PORTS = [10080, 6000, 6665, 6666, 6667, 6668, 6669, 6697, 5060, 5061, 4190, 3659, 2049, 1719, 1720, 1723];

async function bindOneOf(ports: readonly number[]): Promise<number | undefined> {
  for (const port of ports) {
    const srv = net.createServer();
    try {
      srv.listen(port, '127.0.0.1');
      await once(srv, 'listening');
      await new Promise((r) => srv.close(r));
      return port;
    } catch {
      /* in use: try the next */
    }
  }
  return undefined;
}

test('cli: status reaches an admin listener on any port, and says "connection refused" where nothing listens', async (t) => {
  const refused = sluice(t, ['status', '--admin', '127.0.0.1:1']);
  assert.equal(await refused.exited, 1);
  assert.match(refused.err(), /cannot reach the admin API at http:\/\/127\.0\.0\.1:1\/: connection refused \(ECONNREFUSED\)/);
  assert.doesNotMatch(refused.err(), /bad port/);

  for (const [arg, want] of [['127.0.0.1:0', /port 0 is out of range \(1-65535\)/], ['127.0.0.1:65536', /port 65536 is out of range/]] as const) {
    const r = sluice(t, ['status', '--admin', arg]);
    assert.equal(await r.exited, 2, arg);
    assert.match(r.err(), want);
  }

  const adminPort = await bindOneOf(FETCH_BAD_PORTS);
  assert.ok(adminPort !== undefined, `one of ${FETCH_BAD_PORTS.join(', ')} is free on 127.0.0.1`);
  const dir = await tempDir(t);
  const file = join(dir, 'sluice.yaml');
  await writeFile(file, `routes:\n  web:\n    listen: tcp://127.0.0.1:0\n    upstream: 127.0.0.1:9\naccessLog: { output: off }\nadmin: { listen: 127.0.0.1:${adminPort} }\nlifecycle: { drainTimeout: 1s }\n`);
  const run = sluice(t, ['run', file]);
  await waitFor(() => run.err().includes('route up'), 'sluice run started', 10_000);
  const st = sluice(t, ['status', '--admin', `127.0.0.1:${adminPort}`]);
  assert.equal(await st.exited, 0, st.err());
  assert.match(st.out(), /^ROUTE\s+PROTO/);
  assert.match(st.out(), /\nweb\s+tcp\s+tcp:\/\/127\.0\.0\.1:0\s/);
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});

// The leak check (leak-check.ts, loaded into every test file's process by scripts/test.mjs) must
// catch what it claims to: files that leave things open on purpose fail with the resource named,
// without hanging, and a file that closes everything passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { waitFor } from './net.js';

const leakCheck = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'leak-check.js')).href;

/** Runs `body` as the only test of a file, the way scripts/test.mjs runs files. */
function runFile(t: { after(fn: () => void): void }, body: string) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-leak-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'fixture.test.mjs');
  writeFileSync(
    file,
    `import { test } from 'node:test';\nimport net from 'node:net';\nimport dgram from 'node:dgram';\nimport { once } from 'node:events';\nimport { spawn } from 'node:child_process';\n${body}\n`,
  );
  const env: NodeJS.ProcessEnv = { ...process.env, LEAK_CHECK_HANG_MS: '1000' };
  delete env.NODE_TEST_CONTEXT; // the inner runner is a runner, not a file of this one
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--import', leakCheck, '--test', file], { encoding: 'utf8', env, timeout: 60_000 });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}`, ms: Date.now() - started };
}

test('a file that leaves a server and a connected socket open fails, naming them, instead of hanging', (t) => {
  const r = runFile(
    t,
    `test('leaks a socket', async () => {
      const server = net.createServer(() => {}).listen(0, '127.0.0.1');
      await once(server, 'listening');
      const client = net.connect(server.address().port, '127.0.0.1');
      await once(client, 'connect');
    });`,
  );
  assert.equal(r.signal, null, 'the file ended on its own (no hang)');
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /leak check: .*fixture\.test\.mjs left \d resource\(s\) open after its tests/);
  assert.match(r.out, /TCPServerWrap \(server listening on 127\.0\.0\.1:\d+\)/);
  assert.match(r.out, /TCPSocketWrap \(socket 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+\)/);
});

test('unreferenced leaks count too: a UDP socket, an interval and a child process', async (t) => {
  const r = runFile(
    t,
    `test('leaks quietly', async () => {
      const udp = dgram.createSocket('udp4');
      udp.bind(0, '127.0.0.1');
      await once(udp, 'listening');
      udp.unref();
      setInterval(function sweep() {}, 1000).unref();
      const child = spawn('sleep', ['30'], { stdio: 'ignore' });
      child.unref();
      await once(child, 'spawn');
    });`,
  );
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /UDPWrap \(UDP socket bound to 127\.0\.0\.1:\d+\)/);
  assert.match(r.out, /Timeout \(setInterval every 1000 ms: function sweep\(\) \{\}\)/);
  assert.match(r.out, /ProcessWrap \(child process \d+ sleep\)/);
  const pid = Number(/child process (\d+) sleep/.exec(r.out)![1]);
  const alive = () => {
    try {
      return !/^Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '');
    } catch {
      return false;
    }
  };
  await waitFor(() => !alive(), 'the leaked child to be killed', 5000);
});

test('a file that closes everything it opened passes', (t) => {
  const r = runFile(
    t,
    `test('tidy', async (t) => {
      const server = net.createServer((s) => s.end()).listen(0, '127.0.0.1');
      await once(server, 'listening');
      t.after(() => server.close());
      const client = net.connect(server.address().port, '127.0.0.1');
      await once(client, 'end');
      client.destroy();
      const udp = dgram.createSocket('udp4');
      udp.bind(0, '127.0.0.1');
      await once(udp, 'listening');
      udp.unref();
      udp.close();
      clearInterval(setInterval(() => {}, 1000).unref());
      await new Promise((r) => setTimeout(r, 5));
    });`,
  );
  assert.equal(r.status, 0, r.out);
  assert.doesNotMatch(r.out, /leak check/);
});

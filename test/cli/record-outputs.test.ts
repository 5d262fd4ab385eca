import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { runSluice } from '../helpers/cli.js';
import { tempDir } from '../helpers/peers.js';

/** The exit code, or a failure naming what the process printed if it is still running after `ms`. */
async function exitWithin(p: ReturnType<typeof runSluice>, ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still running after ${ms} ms:\n${p.err()}`)), ms)));
  try {
    return await Promise.race([p.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A UDP route to an echo service, then `extra` top-level keys; `moreRoutes` go under `routes:`. */
async function routeYaml(t: TestContext, extra: string) {
  const echo = await udpEcho(t);
  const port = await freePort('udp');
  const yaml = (more: string, moreRoutes = '') =>
    `routes:\n  game:\n    listen: udp://127.0.0.1:${port}\n    upstream: 127.0.0.1:${echo.port}\n${moreRoutes}lifecycle: { drainTimeout: 1s }\n${more}`;
  return { port, yaml: yaml(extra), with: yaml };
}

async function admin(port: number, path: string): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return r.text();
}

/** Resolves once the admin API answers (the process has started and handles SIGHUP). */
async function ready(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await admin(port, '/api/health').then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the admin API never answered');
}

const metric = (body: string, series: string) => Number(body.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1] ?? NaN);

test('cli: an access log or flow log that cannot be opened stops the start (exit 4) naming the key and the path', async (t) => {
  const dir = await tempDir(t);
  const notDir = join(dir, 'a-file');
  await writeFile(notDir, 'x');
  const cases = [
    { extra: `accessLog: { output: ${join(notDir, 'access.log')} }\n`, key: 'accessLog.output', path: join(notDir, 'access.log'), code: 'ENOTDIR' },
    // A new folder under /proc: Node's recursive mkdir spun there forever at full CPU.
    { extra: `accessLog: { output: off }\nflowLog: { output: /proc/sluice-no-such-dir/flow.log }\n`, key: 'flowLog.output', path: '/proc/sluice-no-such-dir/flow.log', code: 'ENOENT' },
  ];
  for (const c of cases) {
    const { yaml } = await routeYaml(t, c.extra);
    const file = join(dir, 'sluice.yaml');
    await writeFile(file, yaml);
    const p = runSluice(t, ['run', '--config', file]);
    assert.equal(await exitWithin(p, 10_000), 4, p.err());
    assert.match(p.err(), new RegExp(`${c.key.replace('.', '\\.')}: cannot open ${c.path.replace(/[.]/g, '\\.')} for writing: ${c.code}`));
    assert.doesNotMatch(p.err(), /at .*\.js:\d+/, 'no stack trace');
  }
});

test('cli: a reload whose access log cannot be opened is rejected and the running config stays', async (t) => {
  const dir = await tempDir(t);
  const adminPort = await freePort('tcp');
  const good = join(dir, 'access.log');
  const more = (output: string) => `accessLog: { output: ${output} }\nadmin: { listen: 127.0.0.1:${adminPort} }\n`;
  const { yaml, with: yamlWith } = await routeYaml(t, more(good));
  const file = join(dir, 'sluice.yaml');
  await writeFile(file, yaml);
  const p = runSluice(t, ['run', '--config', file]);
  await ready(adminPort);
  const rejected = async () => metric(await admin(adminPort, '/metrics').catch(() => ''), 'sluice_config_reloads_total{result="rejected"}');
  const up = await freePort('tcp');
  await writeFile(file, yamlWith(more(join(good, 'x')), `  other:\n    listen: tcp://127.0.0.1:${up}\n    upstream: 127.0.0.1:9\n`));
  p.child.kill('SIGHUP');
  let count = NaN;
  for (let i = 0; i < 100 && !(count >= 1); i++) {
    count = await rejected();
    if (!(count >= 1)) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(count, 1, `the reload was rejected:\n${p.err()}`);
  const health = JSON.parse(await admin(adminPort, '/api/health')) as { status: string; routes: number; accessLog: { output: string } };
  assert.equal(health.status, 'ok');
  assert.equal(health.routes, 1, 'the route of the rejected reload was not added');
  assert.equal(health.accessLog.output, good);
  p.child.kill('SIGTERM');
  assert.equal(await exitWithin(p, 10_000), 0, p.err());
});

test('cli: an output that fails while running degrades visibly (health, counter) without spinning, and SIGTERM still stops the process', async (t) => {
  const adminPort = await freePort('tcp');
  // /dev/full opens fine and fails every write with ENOSPC.
  const { yaml, port } = await routeYaml(t, `accessLog: { output: /dev/full }\nflowLog: { output: /dev/full }\nadmin: { listen: 127.0.0.1:${adminPort} }\n`);
  const dir = await tempDir(t);
  const file = join(dir, 'sluice.yaml');
  await writeFile(file, yaml);
  const p = runSluice(t, ['run', '--config', file]);
  const c = await udpClient(t);
  await waitFor(() => {
    c.send(port, 'ping');
    return c.inbox.length > 0;
  }, 'the udp route to answer');
  let health: { status: string; problems?: string[] } = { status: '' };
  // Each output reports its own first failed write: wait for both, not only the first.
  const both = () => health.status === 'degraded' && health.problems?.length === 2;
  for (let i = 0; i < 100 && !both(); i++) {
    health = JSON.parse(await admin(adminPort, '/api/health')) as typeof health;
    if (!both()) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(health.status, 'degraded');
  assert.equal(health.problems?.length, 2, JSON.stringify(health.problems));
  assert.match(health.problems![0]!, /^accessLog\.output \/dev\/full: .*ENOSPC/);
  assert.match(health.problems![1]!, /^flowLog\.output \/dev\/full: .*ENOSPC/);
  const metrics = await admin(adminPort, '/metrics');
  assert.ok(metric(metrics, 'sluice_records_dropped_total{log="access"}') >= 1, 'access lines counted as dropped');
  assert.ok(metric(metrics, 'sluice_records_dropped_total{log="flow"}') >= 1, 'flow records counted as dropped');
  // Traffic goes on while the outputs fail.
  c.inbox.length = 0;
  c.send(port, 'again');
  assert.equal((await c.next()).toString(), 'again');
  p.child.kill('SIGTERM');
  assert.equal(await exitWithin(p, 10_000), 0, p.err());
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../helpers/net.js';
import { runSluice } from '../helpers/cli.js';
import { tempDir } from '../helpers/peers.js';

/** `check` and `run` on the same file: both must refuse it with exit 3 and the same problems. */
async function bothRefuse(t: Parameters<typeof runSluice>[0], file: string) {
  const check = runSluice(t, ['check', '--config', file]);
  const run = runSluice(t, ['run', '--config', file]);
  const [checkCode, runCode] = await Promise.all([check.exited, run.exited]);
  assert.equal(checkCode, 3, check.err());
  assert.equal(runCode, 3, run.err());
  assert.equal(run.err(), check.err(), 'run reports what check reports');
  assert.doesNotMatch(check.err(), /at .*\.js:\d+/, 'no stack trace');
  return check.err();
}

test('cli: check and run refuse two routes whose listen addresses overlap, naming both routes with their lines', async (t) => {
  const dir = await tempDir(t);
  const port = await freePort('udp');
  const file = join(dir, 'sluice.yaml');
  await writeFile(
    file,
    `routes:
  a:
    listen: udp://127.0.0.1:${port}
    upstream: 127.0.0.1:9
  b:
    listen: udp://0.0.0.0:${port}
    upstream: 127.0.0.1:9
`,
  );
  const err = await bothRefuse(t, file);
  assert.match(err, new RegExp(`routes\\.b\\.listen \\(line 6\\): udp://0\\.0\\.0\\.0:${port} overlaps the listen address of route "a" \\(routes\\.a\\.listen, line 3: udp://127\\.0\\.0\\.1:${port}\\)`));
});

test('cli: check and run refuse a missing GeoIP database once, with its key and line', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'sluice.yaml');
  const db = join(dir, 'GeoLite2-Country.mmdb');
  await writeFile(file, `routes:\n  a:\n    listen: udp://127.0.0.1:0\n    upstream: 127.0.0.1:9\ngeoip:\n  database: ${db}\n`);
  const err = await bothRefuse(t, file);
  assert.match(err, new RegExp(`^  geoip\\.database \\(line 6\\): cannot open ${db.replace(/[.]/g, '\\.')}: ENOENT`, 'm'));
  assert.equal(err.split('\n').filter((l) => l.includes('geoip.database')).length, 1, err);
});

test('cli: an empty config (or only comments, or only settings) has nothing to run: check and run say so and exit 3', { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t);
  for (const [name, text] of [
    ['empty', ''],
    ['comments', '# nothing here yet\n'],
    ['settings-only', 'log: { level: debug }\naccessLog: { output: off }\n'],
  ]) {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, text);
    const err = await bothRefuse(t, file);
    assert.match(err, /\(top level\): nothing to run: no routes/, `${name}: ${err}`);
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDir } from '../../src/core/make-dir.js';
import { tempDir } from '../helpers/peers.js';

test('makeDir creates missing parents, accepts an existing folder, and keeps the mode', async (t) => {
  const dir = await tempDir(t);
  const deep = join(dir, 'a', 'b', 'c');
  await makeDir(deep, 0o700);
  assert.ok((await stat(deep)).isDirectory());
  assert.equal((await stat(join(dir, 'a'))).mode & 0o777, 0o700);
  await makeDir(deep);
});

test('makeDir fails at once where the kernel refuses a folder (under /proc, under a file)', async (t) => {
  // Node 20's recursive mkdir never settles for /proc/<new>: it spins in the thread pool.
  await assert.rejects(makeDir('/proc/sluice-no-such-dir/deeper'), (err) => (err as NodeJS.ErrnoException).code === 'ENOENT');
  const dir = await tempDir(t);
  await writeFile(join(dir, 'file'), 'x');
  await assert.rejects(makeDir(join(dir, 'file', 'sub')), (err) => (err as NodeJS.ErrnoException).code === 'ENOTDIR');
});

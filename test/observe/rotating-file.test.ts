import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, readFile, rename, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RotatingFileWriter, type RotatingFs } from '../../src/observe/rotating-file.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/net.js';
import { tempDir } from './tmp-dir.js';

/** A 30-byte line: `n=0007 ` padded with dots, then a newline. */
const line = (n: number) => `n=${String(n).padStart(4, '0')} `.padEnd(29, '.') + '\n';
const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => line(from + i)).join('');

/** node:fs/promises with writes that wait while the gate is shut. */
function gatedFs() {
  let gate: Promise<void> | undefined;
  let openGate = () => {};
  let writes = 0;
  const fs: RotatingFs = {
    rename,
    mkdir,
    async open(path, flags) {
      const h = await open(path, flags);
      return {
        async write(buf, off, len) {
          writes++;
          await gate;
          return h.write(buf, off, len);
        },
        stat: () => h.stat(),
        close: () => h.close(),
      };
    },
  };
  return {
    fs,
    get writes() {
      return writes;
    },
    shut() {
      gate = new Promise((r) => (openGate = r));
    },
    open() {
      gate = undefined;
      openGate();
    },
  };
}

test('rotates before a line would pass maxBytes, keeping maxFiles rotated files', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'logs', 'flows.jsonl'); // the folder is created
  const w = new RotatingFileWriter(path, { maxBytes: 100, maxFiles: 2 });
  t.after(() => w.close());
  for (let i = 1; i <= 20; i++) w.write(line(i));
  await w.flush();

  // 30-byte lines, 100-byte files: three lines per file; files of 1-3, 4-6 … 19-20.
  assert.deepEqual((await readdir(join(dir, 'logs'))).sort(), ['flows.jsonl', 'flows.jsonl.1', 'flows.jsonl.2']);
  assert.equal(await readFile(path, 'utf8'), lines(19, 20));
  assert.equal(await readFile(`${path}.1`, 'utf8'), lines(16, 18));
  assert.equal(await readFile(`${path}.2`, 'utf8'), lines(13, 15));
  assert.deepEqual({ written: w.written, dropped: w.dropped, rotations: w.rotations }, { written: 20, dropped: 0, rotations: 6 });

  // Written one at a time (each line its own batch), the result is the same.
  w.write(line(21));
  await w.flush();
  w.write(line(22));
  await w.flush();
  assert.equal(await readFile(path, 'utf8'), line(22));
  assert.equal(await readFile(`${path}.1`, 'utf8'), lines(19, 21));
  assert.equal(await readFile(`${path}.2`, 'utf8'), lines(16, 18));
});

test('appends to an existing file, and rotates it first when it is already full', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'f.jsonl');
  await writeFile(path, line(1));
  const a = new RotatingFileWriter(path, { maxBytes: 100, maxFiles: 3 });
  a.write(line(2));
  await a.close();
  assert.equal(await readFile(path, 'utf8'), lines(1, 2));

  await writeFile(path, 'x'.repeat(150) + '\n');
  const b = new RotatingFileWriter(path, { maxBytes: 100, maxFiles: 3 });
  b.write(line(3));
  await b.close();
  assert.equal(await readFile(path, 'utf8'), line(3));
  assert.equal((await readFile(`${path}.1`, 'utf8')).length, 151);
});

test('a line longer than maxBytes gets a file of its own; maxFiles 0 truncates in place', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'f.jsonl');
  const long = 'y'.repeat(250) + '\n';
  const w = new RotatingFileWriter(path, { maxBytes: 100, maxFiles: 0 });
  w.write(line(1));
  w.write(long);
  w.write(line(2));
  await w.flush();
  assert.equal(await readFile(path, 'utf8'), line(2));
  assert.deepEqual(await readdir(dir), ['f.jsonl']);
  assert.equal(w.rotations, 2);
  w.write(line(3));
  await w.close();
  assert.equal(await readFile(path, 'utf8'), lines(2, 3));
});

test('a stalled disk: lines beyond maxBufferBytes are dropped and counted, memory stays bounded', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'f.jsonl');
  const g = gatedFs();
  g.shut();
  const w = new RotatingFileWriter(path, { maxBytes: 1 << 20, maxFiles: 1, maxBufferBytes: 300, fs: g.fs });
  t.after(() => {
    g.open();
    return w.close();
  });
  for (let i = 1; i <= 100_000; i++) w.write(line(i)); // 3 MB offered to a 300-byte buffer
  assert.equal(w.dropped, 100_000 - 10);
  assert.ok(w.queuedBytes <= 300);
  const heapBefore = process.memoryUsage().heapUsed;

  await waitFor(() => g.writes === 1, 'the first write to reach the gate');
  for (let i = 1; i <= 100_000; i++) w.write(line(100_000 + i));
  assert.ok(w.queuedBytes <= 300, 'the batch in flight still counts against the buffer');
  assert.equal(w.dropped, 200_000 - 10);
  assert.ok(process.memoryUsage().heapUsed - heapBefore < 8 * 1024 * 1024, 'no backlog kept in memory');

  g.open();
  await w.flush();
  assert.equal(await readFile(path, 'utf8'), lines(1, 10));
  assert.deepEqual({ written: w.written, queued: w.queuedBytes }, { written: 10, queued: 0 });

  // Once the disk is back, lines go through again.
  w.write(line(7));
  await w.flush();
  assert.equal(await readFile(path, 'utf8'), lines(1, 10) + line(7));
});

test('an output error drops lines, reports once per spell, and retries after retryAfterMs', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'f.jsonl');
  let failing = true;
  let opens = 0;
  const fs: RotatingFs = {
    rename,
    mkdir,
    async open(p, flags) {
      opens++;
      if (failing) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      return open(p, flags);
    },
  };
  const clock = new ManualClock();
  const errors: unknown[] = [];
  const w = new RotatingFileWriter(path, { maxBytes: 1000, maxFiles: 1, fs, clock, retryAfterMs: 1000, onError: (e) => errors.push(e) });
  t.after(() => w.close());

  w.write(line(1));
  w.write(line(2));
  await w.flush();
  assert.equal(w.dropped, 2);
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOSPC');
  assert.equal(w.failure, 'no space left on device', 'failing, for /api/health');

  for (let i = 3; i <= 50; i++) w.write(line(i)); // within the retry delay: dropped without touching the disk
  await w.flush();
  assert.equal(opens, 1);
  assert.equal(w.dropped, 50);

  clock.advance(1000);
  w.write(line(51)); // still failing: one more try, no second report
  await w.flush();
  assert.deepEqual({ opens, errors: errors.length, dropped: w.dropped }, { opens: 2, errors: 1, dropped: 51 });

  failing = false;
  clock.advance(1000);
  w.write(line(52));
  await w.flush();
  assert.equal(await readFile(path, 'utf8'), line(52));
  assert.equal(w.written, 1);
  assert.equal(w.failure, undefined, 'working again');
});

test('close writes what is queued, is idempotent, and later writes are dropped', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'f.jsonl');
  const w = new RotatingFileWriter(path, { maxBytes: 1000, maxFiles: 1 });
  for (let i = 1; i <= 5; i++) w.write(line(i));
  const c1 = w.close();
  assert.equal(w.close(), c1);
  await c1;
  w.write(line(6));
  assert.equal(w.dropped, 1);
  assert.equal(await readFile(path, 'utf8'), lines(1, 5));
  assert.throws(() => new RotatingFileWriter(path, { maxBytes: 0, maxFiles: 1 }), RangeError);
  assert.throws(() => new RotatingFileWriter(path, { maxBytes: 10, maxFiles: 1.5 }), RangeError);
});

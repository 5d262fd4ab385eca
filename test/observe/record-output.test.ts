import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openRecordOutput } from '../../src/observe/record-output.js';
import { RotatingFileWriter } from '../../src/observe/rotating-file.js';
import { tempDir } from './tmp-dir.js';

const moduleUrl = new URL('../../src/observe/record-output.js', import.meta.url).href;

test('stdout with a reader that stalls: the writer never waits, drops are counted, lines stay whole', async (t) => {
  // The child writes 20 MB of records to a stdout pipe nobody reads yet, reports its counts on
  // stderr (proving the loop finished while stdout was stalled), then flushes what it kept.
  const script = `
    const { openRecordOutput } = await import(${JSON.stringify(moduleUrl)});
    const out = openRecordOutput('stdout', { maxBufferBytes: 64 * 1024 });
    const N = 200000;
    const started = performance.now();
    for (let i = 0; i < N; i++) out.write(JSON.stringify({ n: i, pad: 'x'.repeat(80) }) + '\\n');
    process.stderr.write(JSON.stringify({ N, dropped: out.dropped, written: out.written, ms: performance.now() - started }) + '\\n');
    await out.close();
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill());
  child.stdout.pause();
  let err = '';
  child.stderr.setEncoding('utf8');
  const report = new Promise<{ N: number; dropped: number; written: number; ms: number }>((resolve, reject) => {
    child.stderr.on('data', (d: string) => {
      err += d;
      if (err.includes('\n')) {
        try {
          resolve(JSON.parse(err.split('\n')[0]!));
        } catch {
          reject(new Error(err));
        }
      }
    });
    child.once('exit', () => reject(new Error(`child exited early: ${err}`)));
  });
  const stats = await report;
  assert.ok(stats.dropped > 0, 'a stalled reader costs records');
  assert.equal(stats.written + stats.dropped, stats.N);

  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stdout.resume();
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, err);
  const lines = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
  assert.equal(lines.length, stats.written);
  let last = -1;
  for (const l of lines) {
    const n = (JSON.parse(l) as { n: number }).n; // every line arrives whole
    assert.ok(n > last, 'in order');
    last = n;
  }
});

test('a path opens a rotating file with the given limits', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'flows.jsonl');
  const out = openRecordOutput(path, { maxBytes: 10, maxFiles: 1 });
  assert.ok(out instanceof RotatingFileWriter);
  out.write('0123456789\n');
  out.write('abc\n');
  await out.close();
  assert.equal(await readFile(path, 'utf8'), 'abc\n');
  assert.equal(await readFile(`${path}.1`, 'utf8'), '0123456789\n');
  assert.deepEqual([out.written, out.dropped], [2, 0]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rebuilt } from '../../src/ops/rebuilt.js';

test('Rebuilt keeps the part while its key is the same, disposes of the old one before building the next, and off leaves none', async () => {
  const log: string[] = [];
  let n = 0;
  const r = new Rebuilt<string>((p) => void log.push(`dispose ${p}`));
  const build = () => {
    const p = `part${++n}`;
    log.push(`build ${p}`);
    return p;
  };
  assert.equal(await r.apply('k1', build), true);
  assert.equal(await r.apply('k1', build), false);
  assert.equal(r.current, 'part1');
  assert.equal(await r.apply('k2', build), true);
  assert.equal(r.current, 'part2');
  assert.equal(await r.apply('off', build), true);
  assert.equal(r.current, undefined);
  assert.equal(await r.close(), false);
  assert.deepEqual(log, ['build part1', 'dispose part1', 'build part2', 'dispose part2']);
});

test('Rebuilt: a build that throws leaves no part, and the same key is tried again on the next apply', async () => {
  const r = new Rebuilt<number>(() => {});
  await assert.rejects(r.apply('k', () => Promise.reject(new Error('cannot open'))), /cannot open/);
  assert.equal(r.current, undefined);
  assert.equal(await r.apply('k', () => 7), true);
  assert.equal(r.current, 7);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharedTicks } from '../../src/listen/shared-ticks.js';
import { ManualClock } from '../helpers/manual-clock.js';

test('shared ticks: intervals of one period share one timer, run in order, and release it when the last is cancelled', () => {
  const clock = new ManualClock();
  const ticks = sharedTicks(clock);
  const seen: string[] = [];
  const a = ticks.setInterval(() => seen.push('a'), 250);
  const b = ticks.setInterval(() => seen.push('b'), 250);
  const c = ticks.setInterval(() => seen.push('c'), 100);
  assert.equal(clock.pendingTimers, 2, 'one timer per period');
  clock.advance(250);
  assert.deepEqual(seen, ['c', 'c', 'a', 'b']);
  a.cancel();
  a.cancel();
  seen.length = 0;
  clock.advance(250);
  assert.deepEqual(seen.filter((s) => s !== 'c'), ['b']);
  b.cancel();
  c.cancel();
  assert.equal(clock.pendingTimers, 0, 'no timer left once every interval is cancelled');
  const d = ticks.setInterval(() => seen.push('d'), 250);
  seen.length = 0;
  clock.advance(250);
  assert.deepEqual(seen, ['d'], 'a period used again gets a timer again');
  d.cancel();
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BIND_RETRY_MS, BindRetries } from '../../src/discovery/bind-retries.js';
import { ManualClock } from '../helpers/manual-clock.js';

function retries(maxMs: number) {
  const clock = new ManualClock();
  let due = 0;
  const r = new BindRetries(clock, maxMs, () => void due++);
  return { clock, r, due: () => due };
}

/** Ms from each failure of `key` until it may be tried again. */
function waits(r: BindRetries, clock: ManualClock, key: string, failures: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < failures; i++) {
    r.block(key, `fail ${i}`);
    const from = clock.now();
    for (let n = 0; !r.mayTry(key); n++) {
      assert.ok(n < 1000, `${key} never falls due`);
      clock.advance(100);
    }
    out.push(clock.now() - from);
  }
  return out;
}

test('a blocked route sits out until its retry: 1 s, doubling, capped at the maximum; due is reported each time', () => {
  const { clock, r, due } = retries(5000);
  assert.equal(r.mayTry('a'), true, 'never blocked');
  assert.deepEqual(waits(r, clock, 'a', 5), [BIND_RETRY_MS, 2000, 4000, 5000, 5000]);
  assert.equal(due(), 5);
  assert.deepEqual([...r.failures()], [['a', 'fail 4']]);
});

test('the cap is never below the first retry', () => {
  const { clock, r } = retries(0);
  assert.deepEqual(waits(r, clock, 'a', 3), [1000, 1000, 1000]);
});

test('failing again while due restarts the wait and keeps the latest message; routes keep their order', () => {
  const { clock, r } = retries(60_000);
  r.block('a', 'first');
  r.block('b', 'other');
  clock.advance(999);
  r.block('a', 'second'); // cancels the first timer: the wait is now 2 s from here
  clock.advance(1999);
  assert.equal(r.mayTry('a'), false);
  assert.equal(r.mayTry('b'), true);
  clock.advance(1);
  assert.equal(r.mayTry('a'), true);
  assert.deepEqual([...r.failures()], [['a', 'second'], ['b', 'other']]);
});

test('forget drops the chosen routes and their timers; close cancels the rest', () => {
  const { clock, r, due } = retries(60_000);
  r.block('a', 'x');
  r.block('b', 'y');
  r.block('c', 'z');
  r.forget((key) => key === 'b');
  assert.deepEqual([...r.failures()].map(([k]) => k), ['a', 'c']);
  assert.equal(clock.pendingTimers, 2);
  r.close();
  clock.advance(10_000);
  assert.equal(due(), 0);
  assert.equal(r.mayTry('a'), false, 'closed: no retry falls due');
});

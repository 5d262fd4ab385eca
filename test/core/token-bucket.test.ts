import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/core/token-bucket.js';
import { ManualClock } from '../helpers/manual-clock.js';

test('take spends the burst, then refills at perSecond on the clock; give returns one; 0 per second is unlimited', () => {
  const clock = new ManualClock();
  const b = new TokenBucket({ perSecond: 10, burst: 3 }, clock);
  assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
  assert.equal(b.full, false);
  clock.advance(99);
  assert.equal(b.take(), false, 'not one whole token after 99 ms at 10/s');
  clock.advance(1);
  assert.equal(b.take(), true);
  b.give();
  assert.equal(b.take(), true, 'the token given back');
  clock.advance(300);
  assert.equal(b.full, true);
  const free = new TokenBucket({ perSecond: 0, burst: 0 }, clock);
  for (let i = 0; i < 1000; i++) assert.equal(free.take(), true);
});

test('bytes: has/takeN never go into debt; spend does and says how long until it is paid back', () => {
  const clock = new ManualClock();
  const b = new TokenBucket({ perSecond: 1000, burst: 1500 }, clock);
  assert.equal(b.has(1500), true);
  b.takeN(1000);
  assert.equal(b.has(600), false);
  assert.equal(b.spend(1000), 500, '500 bytes of debt at 1000 B/s is 500 ms');
  clock.advance(500);
  assert.equal(b.spend(0), 0);
  b.setLimit({ perSecond: 2000, burst: 1500 });
  clock.advance(500);
  assert.equal(b.has(1000), true, '1000 bytes in 500 ms at the new rate');
  assert.equal(b.has(1001), false);
});

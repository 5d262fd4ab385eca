import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Backoff } from '../../src/core/backoff.js';
import { isSluiceError } from '../../src/core/errors.js';

test('jitter: the extremes of the random source, the cap, and every delay within ±50 % of the nominal one', () => {
  assert.equal(new Backoff({}, () => 0).next(), 2_500);
  assert.equal(new Backoff({}, () => 0.999999).next(), 7_500);
  const capped = new Backoff({}, () => 0.999999);
  for (let i = 0; i < 7; i++) capped.next();
  assert.equal(capped.next(), 300_000);
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 40 }), (rs) => {
      let i = 0;
      const b = new Backoff({}, () => rs[i % rs.length]!);
      for (; i < rs.length; i++) {
        const n = b.nominalMs(i);
        const d = b.next();
        assert.ok(d >= Math.floor(n * 0.5) && d <= Math.min(300_000, Math.ceil(n * 1.5)));
      }
    }),
    { seed: 0x5eed, numRuns: 300 },
  );
});

test('reset starts the schedule over; bad options name the settings they came from', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
  assert.deepEqual([b.next(), b.next(), b.next(), b.attempt], [100, 200, 400, 3]);
  b.reset();
  assert.deepEqual([b.attempt, b.next()], [0, 100]);
  assert.throws(
    () => new Backoff({ initialMs: 10, maxMs: 5 }, Math.random, 'conntrack'),
    (err: unknown) => isSluiceError(err, 'SLUICE_ERR_CONFIG_INVALID') && err.message === 'conntrack: backoff.maxMs: must be at least initialMs',
  );
});

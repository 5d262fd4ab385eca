import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthBackoff } from '../../src/gateway/auth-backoff.js';
import { ManualClock } from '../helpers/manual-clock.js';

test('an address waits after `after` failures, the wait doubles up to max, a success forgets it', () => {
  const clock = new ManualClock();
  const b = new AuthBackoff({ after: 3, initialMs: 1000, maxMs: 4000 }, clock);
  b.failed('192.0.2.1');
  b.failed('192.0.2.1');
  assert.equal(b.waitMs('192.0.2.1'), 0, 'two failures are free');
  b.failed('192.0.2.1');
  assert.equal(b.waitMs('192.0.2.1'), 1000);
  assert.equal(b.waitMs('192.0.2.2'), 0, 'other addresses are not affected');
  clock.advance(1000);
  assert.equal(b.waitMs('192.0.2.1'), 0);
  b.failed('192.0.2.1');
  assert.equal(b.waitMs('192.0.2.1'), 2000);
  b.failed('192.0.2.1');
  b.failed('192.0.2.1');
  assert.equal(b.waitMs('192.0.2.1'), 4000, 'capped');
  b.succeeded('192.0.2.1');
  assert.equal(b.waitMs('192.0.2.1'), 0);
});

test('memory is bounded whatever the number of sources', () => {
  const clock = new ManualClock();
  const b = new AuthBackoff({ after: 1, initialMs: 1000, maxMs: 1000, maxEntries: 100 }, clock);
  for (let i = 0; i < 1000; i++) b.failed(`10.0.${i >> 8}.${i & 255}`);
  let waiting = 0;
  for (let i = 0; i < 1000; i++) if (b.waitMs(`10.0.${i >> 8}.${i & 255}`) > 0) waiting++;
  assert.equal(waiting, 100, 'only the most recent 100 addresses are remembered');
});

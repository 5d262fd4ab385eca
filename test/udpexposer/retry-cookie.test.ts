import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetryCookies } from '../../src/udpexposer/retry-cookie.js';
import { STATS_NONCE } from '../../src/protocol/udpexposer/constants.js';
import { ManualClock } from '../helpers/manual-clock.js';

const secret = Buffer.alloc(32, 7);

test('an issued value verifies once, from the address it was issued to', () => {
  const clock = new ManualClock();
  const c = new RetryCookies(clock, secret);
  const n = c.issue('203.0.113.5', 4000);
  assert.ok(n > 0n && n < STATS_NONCE);
  assert.equal(c.check(n, '203.0.113.6', 4000), 'forged');
  assert.equal(c.check(n, '203.0.113.5', 4001), 'forged');
  assert.equal(c.check(n, '203.0.113.5', 4000), 'ok');
  assert.equal(c.check(n, '203.0.113.5', 4000), 'replayed');
});

test('window: 10 s in the past, 1 s in the future (udpexposer)', () => {
  const clock = new ManualClock();
  const c = new RetryCookies(clock, secret);
  const n = c.issue('2001:db8::1', 9);
  clock.advance(10_999);
  assert.equal(c.check(n, '2001:db8::1', 9), 'ok');
  const m = c.issue('2001:db8::1', 9);
  clock.advance(11_000);
  assert.equal(c.check(m, '2001:db8::1', 9), 'stale');
  // a value from one second ahead (another server's clock, or a guess) is accepted only if it is genuine
  const ahead = new RetryCookies(new ManualClock(clock.wallStart + clock.now() + 1000), secret);
  assert.equal(c.check(ahead.issue('2001:db8::1', 9), '2001:db8::1', 9), 'ok');
  const farAhead = new RetryCookies(new ManualClock(clock.wallStart + clock.now() + 2000), secret);
  assert.equal(c.check(farAhead.issue('2001:db8::1', 9), '2001:db8::1', 9), 'stale');
});

test('values from another secret do not verify', () => {
  const clock = new ManualClock();
  const other = new RetryCookies(clock, Buffer.alloc(32, 8));
  assert.equal(new RetryCookies(clock, secret).check(other.issue('192.0.2.1', 1), '192.0.2.1', 1), 'forged');
});

test('after the window a burnt value is forgotten, and is stale anyway', () => {
  const clock = new ManualClock();
  const c = new RetryCookies(clock, secret);
  const n = c.issue('192.0.2.1', 1);
  assert.equal(c.check(n, '192.0.2.1', 1), 'ok');
  clock.advance(60_000);
  assert.equal(c.check(n, '192.0.2.1', 1), 'stale');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANSWER_TIMEOUT_MS, FIRST_RETRY_MS, keepsOwnOffer, OfferSchedule } from '../../src/agent/peer-offers.js';
import { ManualClock } from '../helpers/manual-clock.js';

test('glare: only the controlling initiator keeps its own unanswered offer against another attempt', () => {
  const own = { id: 'aaaaaaaa', answered: false };
  assert.equal(keepsOwnOffer(own, 'bbbbbbbb', true, true), true);
  assert.equal(keepsOwnOffer(own, 'bbbbbbbb', true, false), false, 'controlled side takes the peer offer');
  assert.equal(keepsOwnOffer(own, 'bbbbbbbb', false, true), false, 'not the connecting side');
  assert.equal(keepsOwnOffer({ ...own, answered: true }, 'bbbbbbbb', true, true), false, 'answered: the peer restarts');
  assert.equal(keepsOwnOffer(own, 'aaaaaaaa', true, true), false, 'the same attempt');
  assert.equal(keepsOwnOffer(undefined, 'bbbbbbbb', true, true), false);
});

/** Times (ms on the clock) at which the retries ran. */
function backOffTimes(maxDelayMs: number, failures: number, answeredAfter?: number): number[] {
  const clock = new ManualClock();
  const s = new OfferSchedule(clock, maxDelayMs);
  const ran: number[] = [];
  for (let i = 0; i < failures; i++) {
    if (i === answeredAfter) s.answered();
    s.backOff(() => ran.push(clock.now()));
    clock.advance(100_000);
  }
  return ran.map((t, i) => t - i * 100_000);
}

test('backOff waits FIRST_RETRY_MS, doubling up to the maximum; an answer starts again from the first wait', () => {
  assert.equal(FIRST_RETRY_MS, 1000);
  assert.deepEqual(backOffTimes(5000, 5), [1000, 2000, 4000, 5000, 5000]);
  assert.deepEqual(backOffTimes(5000, 5, 3), [1000, 2000, 4000, 1000, 2000]);
});

test('one retry pending at a time: retryIn replaces it, no callback or cancelRetry clears it', () => {
  const clock = new ManualClock();
  const s = new OfferSchedule(clock, 60_000);
  const ran: string[] = [];
  s.retryIn(500, () => ran.push('a'));
  s.retryIn(800, () => ran.push('b'));
  clock.advance(1000);
  assert.deepEqual(ran, ['b']);
  s.retryIn(500, () => ran.push('c'));
  s.retryIn(500, undefined);
  s.backOff(() => ran.push('d'));
  s.cancelRetry();
  clock.advance(10_000);
  assert.deepEqual(ran, ['b']);
  assert.equal(clock.pendingTimers, 0);
});

test('the answer deadline runs after ANSWER_TIMEOUT_MS unless cancelled; a new one replaces the last', () => {
  const clock = new ManualClock();
  const s = new OfferSchedule(clock, 60_000);
  const ran: string[] = [];
  s.awaitAnswer(() => ran.push('first'));
  clock.advance(ANSWER_TIMEOUT_MS - 1);
  s.awaitAnswer(() => ran.push('second'));
  clock.advance(ANSWER_TIMEOUT_MS - 1);
  assert.equal(ran.length, 0);
  clock.advance(1);
  assert.deepEqual(ran, ['second']);
  s.awaitAnswer(() => ran.push('third'));
  s.cancelAnswer();
  clock.advance(ANSWER_TIMEOUT_MS * 2);
  assert.deepEqual(ran, ['second']);
});

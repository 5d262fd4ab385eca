import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsentFreshness, type ConsentStatus } from '../../src/ice/consent.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** RFC 7675 on a hand-moved clock, with the check answered (or not) by the test. */
function setup(random: () => number) {
  const clock = new ManualClock();
  const checks: number[] = [];
  let answer = true;
  const seen: { status: ConsentStatus; at: number }[] = [];
  const consent = new ConsentFreshness({
    clock, random,
    check: async () => (checks.push(clock.now()), answer),
    onStatus: (status) => seen.push({ status, at: clock.now() }),
  });
  return { clock, checks, seen, consent, setAnswer: (a: boolean) => (answer = a) };
}

const flush = () => new Promise((r) => setImmediate(r));

async function advance(clock: ManualClock, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await flush();
  }
}

test('checks every 5 s × 0.8-1.2 (§5.1); the jitter comes from the injected random', async () => {
  for (const [r, gap] of [[0, 4000], [0.5, 5000], [0.999, 5998]] as const) {
    const { clock, checks, consent } = setup(() => r);
    await advance(clock, 20_000, 1);
    consent.stop();
    assert.ok(checks.length >= 3);
    for (let i = 1; i < checks.length; i++) assert.ok(Math.abs(checks[i]! - checks[i - 1]! - gap) <= 1, `r=${r}: ${checks.join(', ')}`);
  }
});

test('no answers: stale at 10 s, expired at exactly 30 s after the last answer, then silence', async () => {
  const { clock, checks, seen, consent, setAnswer } = setup(() => 0.5);
  await advance(clock, 10_000); // answered at 5 s and 10 s
  assert.equal(consent.lastConsentAt, 10_000);
  setAnswer(false);
  await advance(clock, 40_000);
  assert.deepEqual(seen, [{ status: 'stale', at: 20_000 }, { status: 'expired', at: 40_000 }]);
  const after = checks.filter((t) => t > 40_000);
  assert.deepEqual(after, [], 'no checks after expiry');
  assert.equal(clock.pendingTimers, 0);
});

test('an answer while stale makes consent fresh again', async () => {
  const { clock, seen, setAnswer } = setup(() => 0.5);
  setAnswer(false);
  await advance(clock, 12_000);
  setAnswer(true);
  await advance(clock, 5000);
  assert.deepEqual(seen.map((s) => s.status), ['stale', 'fresh']);
});

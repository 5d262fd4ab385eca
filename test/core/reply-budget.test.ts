import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { budgetAllows, budgetReceived, windowTicks, type ReplyBudgetState } from '../../src/core/reply-budget.js';
import { UnverifiedReplyGuard } from '../../src/core/unverified-reply-guard.js';

const fresh = (): ReplyBudgetState => ({ budgetWindow: 0, budgetIn: 0, budgetInPrev: 0, budgetOut: 0, budgetOutPrev: 0 });

test('reply budget: ratio x received over the current and previous window; older windows are forgotten', () => {
  const s = fresh();
  budgetReceived(s, 10, 5);
  assert.ok(budgetAllows(s, 600, 64, 5));
  assert.ok(!budgetAllows(s, 41, 64, 5), '640 is the limit');
  assert.ok(budgetAllows(s, 40, 64, 5));
  assert.ok(!budgetAllows(s, 1, 64, 6), 'window 5 still in view, spent');
  budgetReceived(s, 1, 6);
  assert.ok(budgetAllows(s, 64, 64, 6));
  assert.ok(!budgetAllows(s, 1, 64, 8), 'windows 5 and 6 gone: nothing received in view');
  assert.equal(windowTicks({ ratio: 1, windowMs: 10_000 }, 250), 40);
  assert.equal(windowTicks({ ratio: 1, windowMs: 10 }, 250), 1);
});

test('reply budget: over any sequence, replies allowed <= ratio x bytes received (property)', () => {
  const step = fc.oneof(
    fc.record({ kind: fc.constant('in' as const), n: fc.integer({ min: 0, max: 1500 }) }),
    fc.record({ kind: fc.constant('out' as const), n: fc.integer({ min: 0, max: 65_000 }) }),
    fc.record({ kind: fc.constant('tick' as const), n: fc.integer({ min: 1, max: 3 }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 100 }), fc.array(step, { maxLength: 200 }), (ratio, steps) => {
      const s = fresh();
      let w = 0;
      let inTotal = 0;
      let outTotal = 0;
      for (const x of steps) {
        if (x.kind === 'tick') w += x.n;
        else if (x.kind === 'in') {
          budgetReceived(s, x.n, w);
          inTotal += x.n;
        } else if (budgetAllows(s, x.n, ratio, w)) outTotal += x.n;
        assert.ok(outTotal <= ratio * inTotal, `${outTotal} > ${ratio} x ${inTotal}`);
      }
    }),
    { numRuns: 500, seed: 22 },
  );
});

test('unverified reply guard: at most 3x each request, counted both ways, nothing unlocks more', () => {
  const g = new UnverifiedReplyGuard();
  assert.ok(g.allows(60, 20));
  assert.ok(!g.allows(61, 20));
  for (let i = 0; i < 100; i++) assert.ok(!g.allows(61, 20), 'asking again changes nothing');
  assert.deepEqual(g.counters, { bytesIn: 20 * 102, bytesOut: 60, replies: 1, refused: 101 });
  assert.equal(UnverifiedReplyGuard.limit(20), 60);
});

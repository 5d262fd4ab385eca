import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FairSlot, SendBudget } from '../../src/upstream/agent/send-budget.js';
import { ManualClock } from '../helpers/manual-clock.js';

test('drops the batch\'s pool counted for a session empty its bank: over its share there, it has nothing banked here either (a hand-over would carry it back into the pool)', () => {
  const clock = new ManualClock();
  const budget = new SendBudget({ perSecond: 10_000, roundMs: 10 }, clock, undefined); // 100 a round
  const slot = new FairSlot();
  // 10 a round for 5 rounds: it banks what it leaves of its share.
  for (let r = 0; r < 5; r++) {
    for (let i = 0; i < 10; i++) assert.equal(budget.admit(slot, 'r'), true);
    clock.advance(10);
  }
  assert.equal(budget.admit(slot, 'r'), true);
  assert.ok(slot.bank > 0, `banked ${slot.bank}`);
  budget.countDrops(slot, 30, 5, 'r');
  assert.equal(slot.bank, 0);
  assert.deepEqual(budget.dropped, { 'agent-budget': 30, 'session-share': 5, stale: 0 });
  // The round it was refused in is not banked as unused.
  clock.advance(10);
  assert.equal(budget.admit(slot, 'r'), true);
  assert.equal(slot.bank, 0);
  budget.close();
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIT, DROP_AGENT_BUDGET, FairShare, FairSlot } from '../../src/core/fair-share.js';

/** Offers `n` datagrams of `slot` spread over [from, to) ms; returns how many were admitted. */
function paced(f: FairShare, slot: FairSlot, n: number, from: number, to: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (f.admit(slot, from + ((to - from) * i) / n) === ADMIT) ok++;
  return ok;
}

test('a fold that brings a sweep\'s worth of a paced session is charged to the rounds it spanned: its next datagrams through admit in the same round are not dropped as agent-budget', () => {
  const f = new FairShare({ perSecond: 100_000, roundMs: 10 }); // 1000 per round
  const s = new FairSlot();
  // 10k/s through admit for 50 ms (100 per round), then handed over to the batch.
  assert.equal(paced(f, s, 500, 0, 50), 500);
  // The sweep at 295 ms folds what the batch forwarded since: 245 ms at 10k/s.
  f.charge(s, 295, 2450);
  assert.equal(f.admitted, 500 + 2450, 'every forwarded datagram counts as admitted');
  // Its entries are closed (e.g. it got a socket of its own): the rest of the round goes through admit.
  assert.equal(paced(f, s, 50, 295, 300), 50, 'nothing of a paced session is dropped');
  assert.equal(s.droppedBudget + s.droppedShare, 0);
  // The next fold, one round later, spans only that round: charged whole. Beyond it, only what the
  // session banked while it sent under its share (class comment, "Banks") is admitted.
  f.charge(s, 305, 1000);
  const banked = Math.floor(s.bank);
  assert.ok(banked > 0, 'a paced session under its share banked some');
  assert.equal(paced(f, s, banked + 10, 306, 307), banked, 'a round\'s worth forwarded within the round still spends it');
  assert.equal(f.admit(s, 307), DROP_AGENT_BUDGET);
});

test('a fold spread over the rounds since the last one still charges this round\'s part: a flooder over budget in the batch is cut off here too', () => {
  const f = new FairShare({ perSecond: 100_000, roundMs: 10 }); // 1000 per round
  const flooder = new FairSlot();
  const light = new FairSlot();
  assert.equal(paced(f, flooder, 1, 0, 1), 1);
  // The batch forwarded 40,000 of it by 100 ms, the start of a round: none of them in this round.
  f.charge(flooder, 100, 40_000);
  // 20,000 more in the next 5 ms, all in this round: more than its budget of 1000.
  f.charge(flooder, 105, 20_000);
  assert.equal(f.admit(flooder, 106), DROP_AGENT_BUDGET, 'this round is spent by the flooder');
  assert.equal(paced(f, light, 1, 106, 107), 1, 'a newcomer still draws on the spare');
  // 5,200 forwarded from 105 to 157 ms, 7 ms of it in this round (150-160): 700 charged to it.
  const before = f.admitted;
  f.charge(flooder, 157, 5_200);
  assert.equal(f.admitted - before, 5_200);
  assert.equal(f.admit(flooder, 157), ADMIT, '700 of 5,200 charged to this round: 300 left');
});

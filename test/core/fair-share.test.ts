import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIT, DROP_AGENT_BUDGET, DROP_SESSION_SHARE, FairShare, FairSlot, fairDropReason } from '../../src/core/fair-share.js';

/** Offers `n` datagrams of `slot` at `now`; returns how many were admitted. */
function offer(f: FairShare, slot: FairSlot, n: number, now: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (f.admit(slot, now) === ADMIT) ok++;
  return ok;
}

test('a budget of 0 admits everything and counts nothing as dropped', () => {
  const f = new FairShare({ perSecond: 0 });
  const s = new FairSlot();
  assert.equal(offer(f, s, 10_000, 0), 10_000);
  assert.equal(f.droppedBudget + f.droppedShare, 0);
  assert.equal(f.enabled, false);
});

test('one session alone gets the whole round budget, then agent-budget drops until the next round', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 }); // 100 per round
  const s = new FairSlot();
  assert.equal(offer(f, s, 500, 0), 100);
  assert.equal(s.droppedBudget, 400);
  assert.equal(s.droppedShare, 0);
  assert.equal(f.admit(s, 9.99), DROP_AGENT_BUDGET);
  assert.equal(offer(f, s, 500, 10), 100, 'the next round refills the budget');
});

test('a flooder and a light session: the light one loses nothing, the flooder keeps its share and loses its excess as session-share', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 }); // 100 per round
  const flood = new FairSlot();
  const light = new FairSlot();
  let lightOk = 0;
  let floodOk = 0;
  for (let round = 0; round < 50; round++) {
    const t = round * 10;
    // Interleaved as they would arrive: the flooder offers 10x the budget, the light one 20 per round.
    for (let i = 0; i < 1000; i++) {
      if (f.admit(flood, t + i / 200) === ADMIT) floodOk++;
      if (i % 50 === 0 && f.admit(light, t + i / 200) === ADMIT && round > 0) lightOk++;
    }
  }
  // Round 0 is the start: the flooder was first and alone, the light session lives on the spare there.
  assert.equal(lightOk, 49 * 20, 'the light session lost nothing after the first round');
  // The flooder gets its share (the light one's unused share stays reserved for it within the round).
  assert.ok(floodOk >= 49 * 50 && floodOk <= 50 * 100, `flooder admitted ${floodOk}`);
  assert.ok(flood.droppedShare > 0, 'the flooder lost its excess as session-share');
  assert.equal(f.droppedShare, flood.droppedShare);
});

test('two flooders share the budget equally', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 });
  const a = new FairSlot();
  const b = new FairSlot();
  let okA = 0;
  let okB = 0;
  for (let round = 0; round < 20; round++) {
    let roundA = 0;
    let roundB = 0;
    for (let i = 0; i < 300; i++) {
      // a is always first in the round: it must still not take more than its share once both are known.
      if (f.admit(a, round * 10) === ADMIT) roundA++;
    }
    for (let i = 0; i < 300; i++) if (f.admit(b, round * 10 + 1) === ADMIT) roundB++;
    // Rounds 0 and 1 learn b's demand (b lives on the spare there); then each has 50 per round.
    if (round >= 2) {
      // Give or take the one datagram of debt or credit a round carries.
      assert.ok(Math.abs(roundA - 50) <= 1 && Math.abs(roundB - 50) <= 1, `round ${round}: a ${roundA} b ${roundB}`);
    }
    okA += roundA;
    okB += roundB;
  }
  assert.ok(okA + okB <= 20 * 100 * 9 / 8);
  // a, first in each round, loses its excess as session-share; b comes when the round's budget is spent.
  assert.ok(a.droppedShare > 0 && b.droppedBudget > 0);
});

test('a newcomer after a lone flooder took the round still gets through on the spare', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 });
  const flood = new FairSlot();
  const late = new FairSlot();
  offer(f, flood, 1000, 0);
  offer(f, flood, 1000, 10); // the flooder alone in round 0: its quantum in round 1 is the whole budget
  assert.equal(f.admit(late, 15), ADMIT);
  assert.equal(late.droppedBudget, 0);
});

test('an idle session hoards nothing: a busy one takes what it leaves, and it starts again from one quantum', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 });
  const busy = new FairSlot();
  const idle = new FairSlot();
  // Both active for a while: quantum 50 each.
  for (let r = 0; r < 5; r++) {
    offer(f, busy, 200, r * 10);
    offer(f, idle, 1, r * 10);
  }
  // idle goes quiet for 20 rounds while busy floods alone.
  // Only what idle used to send (1 a round: 3 held back) stays reserved for it while it is recent.
  for (let r = 5; r < 25; r++) assert.ok(offer(f, busy, 200, r * 10) >= 97, `round ${r}`);
  assert.equal(offer(f, busy, 200, 250), 100);
  const before = idle.deficit;
  f.admit(idle, 250);
  assert.ok(idle.deficit <= f.quantum, `deficit ${idle.deficit} (was ${before}) > quantum ${f.quantum}`);
});

test('many sessions each get about budget / sessions, fractional quanta add up across rounds', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 }); // 100 per round, 1000 sessions: 0.1 each
  const slots = Array.from({ length: 1000 }, () => new FairSlot());
  const ok = new Array<number>(1000).fill(0);
  for (let r = 0; r < 100; r++) {
    for (let i = 0; i < slots.length; i++) for (let k = 0; k < 3; k++) if (f.admit(slots[i]!, r * 10 + i / 200) === ADMIT) ok[i]!++;
  }
  const total = ok.reduce((a, b) => a + b, 0);
  assert.ok(total <= 100 * 100 * 9 / 8, `total ${total}`);
  assert.ok(total >= 100 * 90, `total ${total}: the budget is used`);
  const min = Math.min(...ok);
  const max = Math.max(...ok);
  // 100 rounds x 0.1 = 10 each, give or take the first rounds' order.
  assert.ok(min >= 5 && max <= 20, `min ${min} max ${max}`);
});

test('rounds skipped while nothing was sent reset the active count', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 });
  const a = new FairSlot();
  const b = new FairSlot();
  offer(f, a, 10, 0);
  offer(f, b, 10, 0);
  // A long pause: when traffic resumes, a alone gets the whole budget again (its quantum is the
  // round's), and what it banked of it while idle (4 rounds' worth: class comment, "Banks").
  assert.equal(offer(f, a, 500, 1000), 500);
  assert.equal(f.quantum, 100);
});

test('reasons are named as metrics name them; bad settings are refused', () => {
  assert.equal(fairDropReason(DROP_AGENT_BUDGET), 'agent-budget');
  assert.equal(fairDropReason(DROP_SESSION_SHARE), 'session-share');
  assert.throws(() => new FairShare({ perSecond: -1 }), /perSecond/);
  assert.throws(() => new FairShare({ perSecond: 1, roundMs: 0 }), /roundMs/);
});

test('a session that sends only every few rounds keeps its share against a flooder that is first in every round', () => {
  const f = new FairShare({ perSecond: 1000, roundMs: 10 }); // 10 per round
  const flood = new FairSlot();
  const sparse = new FairSlot();
  let lost = 0;
  for (let r = 0; r < 200; r++) {
    offer(f, flood, 100, r * 10);
    // 3 datagrams every 4th round: above what the spare alone would carry. Its first round (a
    // newcomer after a lone flooder: the spare only) is not counted.
    if (r % 4 === 0 && r > 0) for (let k = 0; k < 3; k++) if (f.admit(sparse, r * 10 + 5) !== ADMIT && r > 4) lost++;
  }
  assert.equal(lost, 0);
  assert.ok(flood.droppedShare > 0);
});

test('work conserving: light sessions hold back only about what they send, a heavy one takes the rest', () => {
  const f = new FairShare({ perSecond: 100_000, roundMs: 10 }); // 1000 per round, 101 sessions: quantum about 10
  const heavy = new FairSlot();
  const light = Array.from({ length: 100 }, () => new FairSlot());
  let heavyOk = 0;
  let lightLost = 0;
  for (let r = 0; r < 50; r++) {
    const t = r * 10;
    for (let i = 0; i < 2000; i++) {
      if (f.admit(heavy, t + i / 400) === ADMIT && r >= 5) heavyOk++;
      // Each light session: 2 datagrams a round, spread through it.
      if (i % 20 === 0) for (let k = 0; k < 1; k++) if (f.admit(light[(i / 20) % 100]!, t + i / 400) !== ADMIT && r >= 5) lightLost++;
    }
  }
  assert.equal(lightLost, 0);
  // 1000 a round minus what 100 sessions x 2 need (about 200, up to 500 held back): far above its quantum of 10.
  assert.ok(heavyOk >= 45 * 500, `heavy admitted ${heavyOk} in 45 rounds`);
});

test('take pre-admits up to `want` as that many admits would, stops at the first refusal without counting it, and keeps the others\' share', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 }); // 100 per round
  const flooder = new FairSlot();
  const light = new FairSlot();
  assert.equal(offer(f, light, 1, 0), 1);
  assert.equal(f.take(flooder, 10, 32), 32, 'a chunk within the budget');
  // The most sessions active in one recent round is 1, so the flooder's quantum is the round: it
  // takes the rest of it, as 68 more admits would, and the 69th asked is refused.
  const granted = f.take(flooder, 10, 1000);
  assert.equal(32 + granted, 100, `the rest of the round (${granted})`);
  assert.equal(flooder.droppedBudget + flooder.droppedShare, 0, 'the refusal that ended it is not a drop');
  assert.equal(f.droppedBudget + f.droppedShare, 0);
  assert.equal(offer(f, light, 2, 10), 2, 'the light session still gets its datagrams (from the spare)');
  assert.equal(f.take(flooder, 10, 10), 0, 'nothing left for the flooder this round');
  assert.equal(f.admit(flooder, 10) === ADMIT, false, 'and an admit refuses too');
});

test('charge counts datagrams sent without asking (the batch\'s pool) as admitted: the flooder\'s own excess is then dropped by reason, a light session keeps its share, and a charge never spends the next round', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 }); // 100 per round
  const flooder = new FairSlot();
  const light = new FairSlot();
  // Round 0: both active, the light one sends 30 (so 50, its share, is held back for it next round).
  offer(f, flooder, 1, 0);
  offer(f, light, 30, 0);
  // Round 1: the flooder floods, spending what it banked in round 0 (its share it left unused).
  offer(f, light, 30, 10);
  offer(f, flooder, 1000, 10);
  assert.equal(flooder.bank, 0);
  // Round 2: quanta of 50; the batch forwarded 60 of the flooder's.
  assert.equal(offer(f, light, 1, 20), 1);
  f.charge(flooder, 20, 60);
  assert.equal(f.quantum, 50);
  const admitted = f.admitted;
  const shareDrops = flooder.droppedShare;
  assert.equal(f.admit(flooder, 20), DROP_SESSION_SHARE, 'the flooder used its share in the batch: its next datagram is its own excess');
  assert.equal(flooder.droppedShare, shareDrops + 1);
  assert.equal(f.admitted, admitted);
  assert.equal(offer(f, light, 20, 20), 20, 'the light session is held its share');
  // A fold that brings more than the round (what the batch forwarded over several rounds) spends this round only.
  f.charge(flooder, 20, 10_000);
  assert.equal(f.admit(flooder, 20), DROP_AGENT_BUDGET, 'this round is spent');
  assert.equal(offer(f, light, 1, 20), 1, 'a light session within its expected demand still draws on the spare');
  assert.equal(offer(f, flooder, 200, 30) > 0, true, 'the next round has its budget again');
  // No budget: charging is a no-op.
  const off = new FairShare({ perSecond: 0 });
  off.charge(flooder, 0, 5);
  assert.equal(off.admitted, 0);
});

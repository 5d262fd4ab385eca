import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIT, FairShare, FairSlot } from '../../src/core/fair-share.js';

/** Offers `n` datagrams of `slot` spread over [from, to) ms; returns how many were admitted. */
function paced(f: FairShare, slot: FairSlot, n: number, from: number, to: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (f.admit(slot, from + ((to - from) * i) / n) === ADMIT) ok++;
  return ok;
}

test('a paced client read late (the process stalled 36 ms) loses nothing: its backlog, read in one round, fits what it banked of its share', () => {
  const f = new FairShare({ perSecond: 100_000, roundMs: 10 }); // 1000 per round, the default
  const s = new FairSlot();
  // 40k/s, read as it comes: 400 a round.
  assert.equal(paced(f, s, 4000, 0, 100), 4000);
  // The loop stalls from 100 to 136 ms (a GC, a shared CPU, the client moved to a socket of its
  // own); the client went on sending: 1,440 datagrams are read at once, in the round of 136-146.
  assert.equal(paced(f, s, 1440, 136, 137), 1440, 'the backlog is admitted whole');
  assert.equal(s.droppedBudget + s.droppedShare, 0);
  // And it goes on at its pace.
  assert.equal(paced(f, s, 4000, 137, 237), 4000);
  assert.equal(f.droppedBudget + f.droppedShare, 0);
});

test('a client read slower than it sends for a while (the process starved of CPU, no round skipped) loses nothing when its backlog is read', () => {
  const f = new FairShare({ perSecond: 100_000, roundMs: 10 });
  const s = new FairSlot();
  assert.equal(paced(f, s, 4000, 0, 100), 4000);
  // For 40 ms the process reads 100 a round of the 400 that arrive, then catches up in one round.
  for (let r = 0; r < 4; r++) assert.equal(paced(f, s, 100, 100 + r * 10, 101 + r * 10), 100);
  assert.equal(paced(f, s, 1200 + 400, 140, 141), 1600, 'the 1,200 it fell behind and the round\'s 400');
  assert.equal(f.droppedBudget + f.droppedShare, 0);
});

test('a flood banks nothing: alone for 100 rounds it gets the budget of 100 rounds, and after an idle spell its bank (4 shares) once', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 }); // 100 per round
  const s = new FairSlot();
  let ok = 0;
  for (let r = 0; r < 100; r++) ok += paced(f, s, 1000, r * 10, r * 10 + 1);
  assert.equal(ok, 100 * 100);
  // Idle for a second: it banked its share of the idle rounds, at most 4 shares.
  assert.equal(paced(f, s, 1000, 2000, 2001), 500);
  // Then the budget a round (one datagram of debt carries over from the round it borrowed in).
  assert.equal(paced(f, s, 1000, 2010, 2011) + paced(f, s, 1000, 2020, 2021), 200, 'then the budget a round');
});

test('a flooder and a light session: the flooder has nothing banked, the light one loses nothing', () => {
  const f = new FairShare({ perSecond: 10_000, roundMs: 10 }); // 100 per round
  const flood = new FairSlot();
  const light = new FairSlot();
  // 10 a round for a while: the light one has banked 4 shares when the flood starts.
  assert.equal(paced(f, light, 100, 0, 100), 100);
  let floodOk = 0;
  let lightLost = 0;
  for (let r = 10; r < 60; r++) {
    for (let i = 0; i < 1000; i++) {
      if (f.admit(flood, r * 10 + i / 200) === ADMIT) floodOk++;
      if (i % 100 === 0 && f.admit(light, r * 10 + i / 200) !== ADMIT) lightLost++;
    }
  }
  assert.equal(lightLost, 0);
  // 50 rounds of 100, less the light one's 500, plus its first round's spare at most.
  assert.ok(floodOk <= 50 * 100 - 500 + 13, `flooder admitted ${floodOk}`);
  assert.equal(flood.bank, 0);
  assert.ok(flood.droppedShare + flood.droppedBudget >= 50 * 1000 - 50 * 100, 'its excess is dropped');
});

test('the rounds the batch carried a session in are not idle: a fold after a sweep in the batch at its whole share banks nothing for them', () => {
  const f = new FairShare({ perSecond: 100_000, roundMs: 10 }); // 1000 per round
  const s = new FairSlot();
  assert.equal(paced(f, s, 1000, 0, 1), 1000, 'its whole share in round 0: nothing left to bank');
  // The batch's pool forwarded it at the whole budget for 250 ms; the fold at 255 ms charges it.
  f.charge(s, 255, 25_000);
  assert.equal(s.bank, 0);
  // 5 ms of 255 are this round's (491 datagrams): what is left of the round, and the spare at most.
  const ok = paced(f, s, 2000, 255, 256);
  assert.ok(ok <= 1000 - 491 + 125, `admitted ${ok} after the fold: the rounds in the batch were banked as idle`);
});

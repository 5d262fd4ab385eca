import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_SEQUENCE, ReplayWindow, type ReplayVerdict } from '../../../src/protocol/tunnel/index.js';
import { assertTunnelError } from './helpers.js';

/**
 * Reference model: the set of accepted sequence numbers and the rule
 *   accept s  iff  s not in accepted  and  (nothing accepted yet  or  s > max(accepted) - W)
 */
class ModelWindow {
  readonly accepted = new Set<number>();
  top = -1;
  constructor(readonly size: number) {}
  update(s: number): ReplayVerdict {
    if (this.top >= 0 && s <= this.top - this.size) return 'too-old';
    if (this.accepted.has(s)) return 'replayed';
    this.accepted.add(s);
    this.top = Math.max(this.top, s);
    return 'ok';
  }
}

test('sequential, duplicate, reordered and too-old datagrams (W = 2048)', () => {
  const w = new ReplayWindow();
  assert.equal(w.size, 2048);
  assert.equal(w.top, -1);
  for (let s = 0; s < 5000; s++) assert.equal(w.update(s), 'ok');
  assert.equal(w.update(4999), 'replayed');
  assert.equal(w.update(4999 - 2047), 'replayed');
  assert.equal(w.update(4999 - 2048), 'too-old');
  assert.equal(w.update(0), 'too-old');
  assert.equal(w.update(6000), 'ok');
  // top 6000: 3953-6000 is the window
  assert.equal(w.update(5001), 'ok', 'unseen and inside');
  assert.equal(w.update(3953), 'replayed', 'seen and inside');
  assert.equal(w.update(3952), 'too-old', 'just below the edge');
});

test('a jump forward keeps the unseen gap acceptable and forgets what fell out', () => {
  const w = new ReplayWindow(64);
  assert.equal(w.update(10), 'ok');
  assert.equal(w.update(100), 'ok');
  assert.equal(w.check(10), 'too-old');
  for (const s of [37, 40, 99, 63]) assert.equal(w.update(s), 'ok', String(s));
  assert.equal(w.update(37), 'replayed');
  assert.equal(w.update(36), 'too-old');
  assert.equal(w.update(1_000_000), 'ok');
  assert.equal(w.update(1_000_000 - 63), 'ok');
  assert.equal(w.update(1_000_000 - 64), 'too-old');
});

test('check does not mark; only accept does (a forged datagram must not move the window)', () => {
  const w = new ReplayWindow(32);
  assert.equal(w.check(500), 'ok');
  assert.equal(w.top, -1);
  assert.equal(w.check(0), 'ok');
  w.accept(0);
  assert.equal(w.check(0), 'replayed');
});

test('works at the top of the 48-bit sequence space', () => {
  const w = new ReplayWindow(32);
  assert.equal(w.update(MAX_SEQUENCE), 'ok');
  assert.equal(w.update(MAX_SEQUENCE), 'replayed');
  assert.equal(w.update(MAX_SEQUENCE - 31), 'ok');
  assert.equal(w.update(MAX_SEQUENCE - 32), 'too-old');
});

test('window sizes must be multiples of 32', () => {
  for (const bad of [0, 16, 33, 1.5, -32, 2 ** 21]) assertTunnelError(() => new ReplayWindow(bad), 'bad-value');
});

const seqArb = (spread: number) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: spread }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: MAX_SEQUENCE }) },
  );

for (const size of [32, 64, 96, 2048]) {
  test(`fast-check: ReplayWindow(${size}) agrees with the reference model on every datagram`, () => {
    fc.assert(
      fc.property(fc.array(seqArb(size * 4), { maxLength: 600 }), (seqs) => {
        const w = new ReplayWindow(size);
        const m = new ModelWindow(size);
        for (const s of seqs) {
          const expected = m.update(s);
          assert.equal(w.check(s), expected, `check(${s})`);
          assert.equal(w.update(s), expected, `update(${s})`);
          assert.equal(w.top, m.top);
        }
      }),
      { numRuns: size === 2048 ? 200 : 1000 },
    );
  });
}

test('fast-check: a mostly-increasing stream with reordering and duplicates, as a network delivers it', () => {
  const size = 64;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: -80, max: 10 }), fc.boolean()), { maxLength: 2000 }), (steps) => {
      const w = new ReplayWindow(size);
      const m = new ModelWindow(size);
      let next = 0;
      for (const [delta, dup] of steps) {
        const s = Math.max(0, next + delta);
        next++;
        assert.equal(w.update(s), m.update(s));
        if (dup) assert.equal(w.update(s), m.update(s));
      }
    }),
    { numRuns: 300 },
  );
});

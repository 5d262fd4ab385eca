import { test } from 'node:test';
import assert from 'node:assert/strict';
import { YoungGenerationWatch, type YoungGenerationHeap } from '../../src/core/young-generation.js';
import { ManualClock } from '../helpers/manual-clock.js';

const MB = 1024 * 1024;

/** A heap whose young generation the test sets; counts the reductions asked for. */
function fakeHeap(committed: number, used = 0) {
  const h = {
    committed,
    used,
    reduced: 0,
    loop: 0.01,
    busy: () => h.loop,
    read(out: Float64Array) {
      out[0] = h.committed;
      out[1] = h.used;
    },
    reduce() {
      h.reduced++;
    },
  };
  return h satisfies YoungGenerationHeap;
}

test('a grown young generation is given back after two quiet readings, once', () => {
  const clock = new ClockWithStep();
  const heap = fakeHeap(32 * MB, 3 * MB);
  const watch = new YoungGenerationWatch(heap, clock);
  clock.step(); // first reading: nothing to compare with
  clock.step(); // quiet once
  assert.equal(heap.reduced, 0);
  heap.used += 14_000; // an idle relay's few kilobytes a second
  clock.step(); // quiet twice
  assert.equal(heap.reduced, 1);
  assert.equal(watch.reductions, 1);
  // Not shrunk yet (the collection is incremental): no second request meanwhile.
  for (let i = 0; i < 5; i++) clock.step();
  assert.equal(heap.reduced, 1);
  watch.close();
});

test('no request while the process allocates, nor for a young generation that has not grown', () => {
  const clock = new ClockWithStep();
  const busy = fakeHeap(32 * MB, 0);
  const watch = new YoungGenerationWatch(busy, clock);
  for (let i = 0; i < 20; i++) {
    busy.used += 2 * MB; // 2 MB/s: above V8's low rate
    clock.step();
  }
  // A scavenge between two readings (used fell): what was allocated is unknown, so not quiet.
  busy.used = 1 * MB;
  clock.step();
  clock.step();
  assert.equal(busy.reduced, 0);
  watch.close();

  const small = fakeHeap(4 * MB, 1 * MB);
  const w2 = new YoungGenerationWatch(small, clock);
  for (let i = 0; i < 20; i++) clock.step();
  assert.equal(small.reduced, 0);
  w2.close();
});

test('no request while the event loop is busy (the native datapath forwarding without allocating), then one once it is idle', () => {
  const clock = new ClockWithStep();
  const heap = fakeHeap(32 * MB, 1 * MB);
  heap.loop = 0.4;
  const watch = new YoungGenerationWatch(heap, clock);
  for (let i = 0; i < 20; i++) clock.step();
  assert.equal(heap.reduced, 0);
  heap.loop = 0.01;
  for (let i = 0; i < 2; i++) clock.step();
  assert.equal(heap.reduced, 1);
  watch.close();
});

test('at most one request per minGapMs, and none after close', () => {
  const clock = new ClockWithStep();
  const heap = fakeHeap(32 * MB, 1 * MB);
  const watch = new YoungGenerationWatch(heap, clock, { minGapMs: 10_000 });
  for (let i = 0; i < 3; i++) clock.step();
  assert.equal(heap.reduced, 1);
  // Still grown (regrown by another burst) and quiet: asked again only 10 s after the first.
  for (let i = 0; i < 8; i++) clock.step();
  assert.equal(heap.reduced, 1);
  for (let i = 0; i < 3; i++) clock.step();
  assert.equal(heap.reduced, 2);
  watch.close();
  for (let i = 0; i < 30; i++) clock.step();
  assert.equal(heap.reduced, 2);
});

/** A ManualClock moved one default interval (1 s) at a time. */
class ClockWithStep extends ManualClock {
  step(): void {
    this.advance(1000);
  }
}

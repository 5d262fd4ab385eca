import { test } from 'node:test';
import assert from 'node:assert/strict';
import { youngGenerationHeap } from '../../src/datapath/native/binding.js';
import { YoungGenerationWatch } from '../../src/core/young-generation.js';
import { systemClock } from '../../src/core/clock.js';
import { waitFor } from '../helpers/net.js';

// The addon's young-generation reading and reduction (native/src/heap-memory.cc) on this very
// process's V8 heap: a burst of long-lived objects grows the young generation; once the process
// is quiet, the watch asks for a memory-reducing collection and V8 gives it back.

const heap = youngGenerationHeap();
const MB = 1024 * 1024;

test('a young generation grown by a burst of long-lived objects is given back once the process is quiet', { skip: heap === undefined ? 'native addon unavailable' : false }, async () => {
  const h = heap!;
  const out = new Float64Array(2);
  // The burst: like thousands of new sessions, objects that survive scavenges and are kept.
  const kept: { id: number; pair: number[]; name: string }[] = [];
  for (let i = 0; i < 300_000; i++) kept.push({ id: i, pair: [i, i + 1], name: `s${i}` });
  h.read(out);
  assert.ok(out[0]! >= 8 * MB, `the burst grew the young generation (${out[0]} bytes)`);
  assert.ok(out[1]! > 0 && out[1]! <= out[0]!, 'used is within committed');
  const watch = new YoungGenerationWatch(h, systemClock, { intervalMs: 100 });
  try {
    await waitFor(() => {
      h.read(out);
      return out[0]! < 8 * MB;
    }, 'the young generation given back', 15_000);
    assert.ok(watch.reductions >= 1);
    // What the burst made is all still there.
    assert.equal(kept.length, 300_000);
    assert.equal(kept[299_999]!.pair[1], 300_000);
  } finally {
    watch.close();
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { FlowSlots } from '../../src/session/flow-slots.js';

class Flow {
  slot = -1;
  constructor(readonly n: number) {}
}

test('FlowSlots: add, delete (the last flow takes the freed place), has, size', () => {
  const s = new FlowSlots<Flow>();
  const [a, b, c, d] = [new Flow(0), new Flow(1), new Flow(2), new Flow(3)];
  for (const f of [a, b, c, d]) s.add(f);
  assert.equal(s.size, 4);
  assert.equal(s.delete(b), true);
  assert.equal(s.delete(b), false, 'a second delete finds nothing');
  assert.equal(b.slot, -1);
  assert.equal(d.slot, 1, 'the last flow moved into the freed place');
  assert.deepEqual([...s].map((f) => f.n), [0, 3, 2]);
  assert.equal(s.has(b), false);
  assert.equal(s.has(d), true);
  assert.equal(s.delete(d), true);
  assert.equal(s.delete(a), true);
  assert.deepEqual([...s].map((f) => f.n), [2]);
  assert.equal(s.delete(new Flow(9)), false, 'a flow never added');
  s.add(b);
  assert.deepEqual([...s].map((f) => f.n), [2, 1]);
});

test('FlowSlots: deleting flows while iterating visits each flow once (the iterator is a copy)', () => {
  const s = new FlowSlots<Flow>();
  const all = Array.from({ length: 10 }, (_, i) => new Flow(i));
  for (const f of all) s.add(f);
  const seen: number[] = [];
  for (const f of s) {
    seen.push(f.n);
    s.delete(f);
    if (f.n === 3) s.delete(all[7]!); // another flow ended by this one's end
  }
  assert.deepEqual(seen.sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(s.size, 0);
});

test('FlowSlots: flows added and deleted one by one do not survive a young-generation collection', () => {
  // What a connection-rate load does to a listener's live set: 32 live, one in and one out per
  // connection, the set itself long-lived (old). A V8 Set leaves a chain of its rebuilt tables
  // that keeps the flows they listed alive through young collections (5.5 MB of this test's
  // 20,000 flows survive one with a Set on Node 20); FlowSlots clears freed places.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (o?: { type: 'minor' | 'major' }) => void;
  const newSpaceUsed = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;
  const live = new FlowSlots<Flow & { pad?: number[] }>();
  const held: Flow[] = [];
  for (let i = 0; i < 32; i++) {
    const f = Object.assign(new Flow(i), { pad: new Array<number>(64).fill(i) });
    live.add(f);
    held.push(f);
  }
  gc({ type: 'minor' });
  gc({ type: 'minor' }); // the set and its array are old now
  for (let i = 0; i < 20_000; i++) {
    const f = Object.assign(new Flow(i), { pad: new Array<number>(64).fill(i) });
    live.add(f);
    held.push(f);
    live.delete(held.shift()!);
  }
  gc({ type: 'minor' });
  const survived = newSpaceUsed();
  assert.equal(live.size, 32);
  assert.ok(survived < 1_000_000, `${survived} bytes survived a young collection (32 live flows are about 25 KB)`);
});

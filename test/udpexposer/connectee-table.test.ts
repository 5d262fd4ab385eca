import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnecteeTable } from '../../src/udpexposer/connectee-table.js';
import { isSluiceError } from '../../src/core/errors.js';
import { ManualClock } from '../helpers/manual-clock.js';

function add(t: ConnecteeTable, port: number) {
  return t.fromConnectee(port, '198.51.100.7', port);
}

test('tags start at 1 and count up; a known connectee keeps its tag', () => {
  const t = new ConnecteeTable({ capacity: 4, evictIdleAfterMs: 0 }, new ManualClock());
  const a = add(t, 1000);
  const b = add(t, 1001);
  assert.ok(a.kind === 'added' && b.kind === 'added');
  assert.equal(a.connectee.tag, 1);
  assert.equal(b.connectee.tag, 2);
  const again = add(t, 1000);
  assert.ok(again.kind === 'known');
  assert.equal(again.connectee, a.connectee);
  assert.equal(t.byTag(2), b.connectee);
});

test('udpexposer -n 2 scenario (A, B, A again, C): both indexes evict the same entry', () => {
  // udpexposer evicts B from its address map but tag 1 (A) from its tag map, so A keeps sending
  // while its replies are dropped (protocols.md §1.4). Here B goes from both.
  const t = new ConnecteeTable({ capacity: 2, evictIdleAfterMs: 0 }, new ManualClock());
  const a = add(t, 1);
  const b = add(t, 2);
  add(t, 1);
  const c = add(t, 3);
  assert.ok(a.kind === 'added' && b.kind === 'added' && c.kind === 'added');
  assert.equal(c.evicted, b.connectee);
  assert.equal(c.connectee.tag, 3);
  assert.equal(t.byTag(1), a.connectee, 'A still reachable by its tag');
  assert.equal(t.byTag(2), undefined, 'B gone from the tag index too');
  const a2 = add(t, 1);
  assert.ok(a2.kind === 'known' && a2.connectee.tag === 1);
  const b2 = add(t, 2);
  assert.ok(b2.kind === 'added');
  assert.equal(b2.connectee.tag, 4, 'B comes back under a new tag, as in udpexposer');
  assert.equal(t.size, 2);
});

test('a full table refuses newcomers while every entry has spoken within evictIdleAfterMs', () => {
  const clock = new ManualClock();
  const t = new ConnecteeTable({ capacity: 2, evictIdleAfterMs: 30_000 }, clock);
  add(t, 1);
  clock.advance(10_000);
  add(t, 2);
  clock.advance(19_999);
  assert.deepEqual(add(t, 3), { kind: 'full' });
  clock.advance(1); // entry 1 now silent for 30 s
  const c = add(t, 3);
  assert.ok(c.kind === 'added');
  assert.equal(c.evicted?.port, 1);
  assert.deepEqual(add(t, 4), { kind: 'full' }, 'entry 2 has been silent only 20 s');
});

test('tags wrap 65535 -> 0 and skip tags still in use', () => {
  const t = new ConnecteeTable({ capacity: 3, evictIdleAfterMs: 0 }, new ManualClock());
  const first = add(t, 1); // tag 1, kept alive throughout
  assert.ok(first.kind === 'added');
  const seen: number[] = [];
  for (let i = 0; i < 65_540; i++) {
    add(t, 1); // keep tag 1 most recent
    const r = add(t, 2 + (i % 50_000) + 1);
    if (r.kind === 'added') seen.push(r.connectee.tag);
  }
  assert.ok(seen.includes(0), 'tag 0 is used after the wrap');
  assert.ok(!seen.includes(1), 'tag 1 is never handed out twice while in use');
  assert.equal(t.byTag(1), first.connectee);
});

test('capacity must be 1-65535', () => {
  for (const capacity of [0, 65_536, 1.5]) {
    assert.throws(() => new ConnecteeTable({ capacity, evictIdleAfterMs: 0 }, new ManualClock()), (e) => isSluiceError(e));
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PendingSlots, type PendingSlot } from '../../src/admission/pending-slots.js';

function filled(max: number, perSource: number, sources: string[]) {
  const table = new PendingSlots({ max, maxPerSource: perSource });
  const evicted: string[] = [];
  const slots: PendingSlot[] = [];
  for (const s of sources) {
    const r = table.admit(s, false, () => evicted.push(s));
    assert.ok(r.ok, `admit ${s}`);
    slots.push(r.slot);
  }
  return { table, evicted, slots };
}

test('per-source cap refuses before anything else', () => {
  const { table } = filled(10, 2, ['a', 'a']);
  assert.deepEqual(table.admit('a', true, () => {}), { ok: false, reason: 'per-source' });
  assert.equal(table.size, 2);
});

test('a full table of one-slot sources refuses an unknown newcomer (no eviction loop)', () => {
  const { table, evicted } = filled(3, 8, ['a', 'b', 'c']);
  assert.deepEqual(table.admit('d', false, () => {}), { ok: false, reason: 'full' });
  assert.deepEqual(evicted, []);
  assert.equal(table.evictions, 0);
});

test('an unknown newcomer evicts from the source holding at least two more slots, oldest first', () => {
  const { table, evicted, slots } = filled(4, 8, ['a', 'b', 'b', 'b']);
  const r = table.admit('c', false, () => {});
  assert.ok(r.ok && r.evicted);
  assert.deepEqual(evicted, ['b']);
  assert.equal(table.held('b'), 2);
  assert.equal(table.size, 4);
  // the oldest entry of b went: releasing it again changes nothing
  slots[1]!.release();
  assert.equal(table.held('b'), 2);
  // b now holds 2, c holds 1: c may not evict again (2 < 1 + 2), a (1) neither
  assert.deepEqual(table.admit('c', false, () => {}), { ok: false, reason: 'full' });
  // the evicted source cannot take a slot back from anyone
  assert.deepEqual(table.admit('b', false, () => {}), { ok: false, reason: 'full' });
});

test('a preferred newcomer evicts any non-preferred entry, least progressed first; preferred entries are never evicted', () => {
  const table = new PendingSlots({ max: 3, maxPerSource: 8 });
  const evicted: string[] = [];
  const a = table.admit('a', false, () => evicted.push('a'));
  const b = table.admit('b', false, () => evicted.push('b'));
  const p = table.admit('p', true, () => evicted.push('p'));
  assert.ok(a.ok && b.ok && p.ok);
  a.slot.advance(1); // a finished TLS: b (still in its handshake) goes first although younger
  const q = table.admit('q', true, () => evicted.push('q'));
  assert.ok(q.ok);
  assert.deepEqual(evicted, ['b']);
  const q2 = table.admit('q', true, () => evicted.push('q2'));
  assert.ok(q2.ok);
  assert.deepEqual(evicted, ['b', 'a']);
  // only preferred entries are left
  assert.deepEqual(table.admit('r', true, () => {}), { ok: false, reason: 'full' });
  assert.equal(table.evictions, 2);
});

test('release frees the slot and the per-source count', () => {
  const { table, slots } = filled(2, 2, ['a', 'a']);
  slots[0]!.release();
  slots[0]!.release();
  assert.equal(table.size, 1);
  assert.equal(table.held('a'), 1);
  assert.ok(table.admit('b', false, () => {}).ok);
});

test('250 one-connection-short sources cannot keep a newcomer out while some hold more than one', () => {
  // 256 slots, 250 attacker sources with 8 wanted each: every attacker source ends with about one
  // slot, and newcomers from fresh addresses still get in.
  const table = new PendingSlots({ max: 256, maxPerSource: 16 });
  for (let round = 0; round < 8; round++) for (let i = 0; i < 250; i++) table.admit(`x${i}`, false, () => {});
  assert.equal(table.size, 256);
  let admitted = 0;
  for (let i = 0; i < 6; i++) if (table.admit(`legit${i}`, false, () => {}).ok) admitted++;
  assert.equal(admitted, 6);
});

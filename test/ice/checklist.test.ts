import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../src/core/errors.js';
import { foundationOf, type CandidateType, type IceCandidate } from '../../src/ice/candidate.js';
import { CheckList, pairFoundation, transition, type CandidatePair, type IceBase, type PairState } from '../../src/ice/checklist.js';
import { decideNomination } from '../../src/ice/nomination.js';
import { candidatePriority } from '../../src/ice/priority.js';
import { StunTransactionTable } from '../../src/turn/stun-transaction.js';
import { ManualClock } from '../helpers/manual-clock.js';

const clock = new ManualClock();

function base(id: number, kind: 'socket' | 'relay' = 'socket', address = `10.0.0.${id + 1}`): IceBase {
  const type: CandidateType = kind === 'socket' ? 'host' : 'relay';
  const candidate: IceCandidate = {
    foundation: foundationOf(type, address), component: 1, transport: 'udp', priority: candidatePriority(type, 65535 - id),
    address, port: 5000, family: 4, type,
  };
  return { id, kind, address: { address, port: 5000, family: 4 }, candidate, table: new StunTransactionTable({ clock, send: () => {} }), send: () => {} };
}

function remote(n: number, type: CandidateType = 'host', foundation = `r${n}`): IceCandidate {
  return { foundation, component: 1, transport: 'udp', priority: candidatePriority(type, 65535 - n), address: `192.0.2.${n}`, port: 7000, family: 4, type };
}

test('pair states: the RFC 8445 §6.1.2.6 moves and nothing else', () => {
  const allowed: Record<PairState, PairState[]> = {
    frozen: ['waiting', 'failed'], waiting: ['in-progress', 'failed'], 'in-progress': ['succeeded', 'failed', 'waiting'], succeeded: [], failed: ['waiting'],
  };
  const all: PairState[] = ['frozen', 'waiting', 'in-progress', 'succeeded', 'failed'];
  for (const from of all) {
    for (const to of all) {
      const p = { state: from, id: 'x' } as CandidatePair;
      if (allowed[from].includes(to)) {
        transition(p, to);
        assert.equal(p.state, to);
      } else {
        assert.throws(() => transition(p, to), (e) => isSluiceError(e, 'SLUICE_ERR_ICE_STATE'), `${from} → ${to}`);
      }
    }
  }
});

test('order: highest pair priority first; pairs start frozen, one per foundation unfreezes at a time', () => {
  const list = new CheckList();
  const b = base(0);
  const r1 = remote(1, 'host', 'same');
  const r2 = remote(2, 'srflx', 'same');
  const r3 = remote(3, 'relay', 'other');
  for (const r of [r3, r1, r2]) list.add(b, r, 'controlling');
  assert.deepEqual(list.all().map((p) => p.remote.address), ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
  assert.ok(list.all().every((p) => p.state === 'frozen'));
  const first = list.next(true)!;
  assert.equal(first.remote, r1);
  transition(first, 'in-progress');
  // r2 shares r1's foundation, which is busy: the next one is r3's.
  const second = list.next(true)!;
  assert.equal(second.remote, r3);
  transition(second, 'in-progress');
  assert.equal(list.next(true), undefined);
  // A success unfreezes the pairs of its foundation (§7.2.5.3.3).
  transition(first, 'succeeded');
  list.unfreeze(pairFoundation(first));
  assert.equal(list.all()[1]!.state, 'waiting');
  assert.equal(list.next(true)!.remote, r2);
});

test('triggered checks go first, revive failed pairs, and leave in-progress ones alone', () => {
  const list = new CheckList();
  const b = base(0);
  const [p1, p2, p3] = [1, 2, 3].map((n) => list.add(b, remote(n), 'controlled')!);
  transition(p3!, 'waiting');
  transition(p3!, 'in-progress');
  transition(p3!, 'failed');
  assert.ok(list.trigger(p3!));
  assert.equal(p3!.state, 'waiting');
  assert.ok(list.trigger(p2!));
  assert.equal(list.next(false), p3);
  assert.equal(list.next(false), p2);
  assert.equal(list.next(false), undefined, 'no ordinary checks when not asked for');
  transition(p1!, 'waiting');
  transition(p1!, 'in-progress');
  assert.equal(list.trigger(p1!), false);
});

test('the list is bounded: a better pair evicts the worst unchecked one; a worse one is refused', () => {
  const list = new CheckList(2);
  const b = base(0);
  list.add(b, remote(5, 'srflx'), 'controlling');
  list.add(b, remote(6, 'relay'), 'controlling');
  assert.ok(list.add(b, remote(1, 'host'), 'controlling'));
  assert.deepEqual(list.all().map((p) => p.remote.type), ['host', 'srflx']);
  assert.equal(list.add(b, remote(7, 'relay'), 'controlling'), undefined);
});

test('a role change reorders (G and D swap), and a lost relay fails its pairs', () => {
  const list = new CheckList();
  const host = base(0);
  const relay = base(1, 'relay', '198.51.100.9');
  const pa = list.add(host, remote(1, 'relay'), 'controlling')!;
  const pb = list.add(relay, remote(2, 'host'), 'controlling')!;
  const before = [pa.priority, pb.priority];
  list.reprioritise('controlled');
  assert.notDeepEqual([pa.priority, pb.priority], before);
  list.failBase(relay);
  assert.equal(pb.state, 'failed');
  assert.equal(pa.state, 'frozen');
});

test('nomination: the best valid pair when nothing better is pending, or after the grace (long for relays)', () => {
  const list = new CheckList();
  const host = base(0);
  const relay = base(1, 'relay', '198.51.100.9');
  const direct = list.add(host, remote(1, 'host'), 'controlling')!;
  const relayed = list.add(relay, remote(2, 'host'), 'controlling')!;
  const timing = { directDelayMs: 250, relayDelayMs: 2000 };
  assert.deepEqual(decideNomination(list.all(), 0, timing), { kind: 'none' });
  for (const s of ['waiting', 'in-progress', 'succeeded'] as const) transition(relayed, s);
  relayed.validAt = 100;
  assert.deepEqual(decideNomination(list.all(), 100, timing), { kind: 'wait', retryAt: 2100 });
  assert.deepEqual(decideNomination(list.all(), 2100, timing), { kind: 'nominate', pair: relayed });
  for (const s of ['waiting', 'in-progress', 'succeeded'] as const) transition(direct, s);
  direct.validAt = 500;
  assert.deepEqual(decideNomination(list.all(), 500, timing), { kind: 'nominate', pair: direct }, 'nothing better pending');
});

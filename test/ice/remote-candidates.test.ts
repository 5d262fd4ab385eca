import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressKey, foundationOf, type CandidateType, type IceCandidate } from '../../src/ice/candidate.js';
import type { IceBase } from '../../src/ice/checklist.js';
import { candidatePriority } from '../../src/ice/priority.js';
import { takeRemoteCandidate } from '../../src/ice/remote-candidates.js';
import { IceSession } from '../../src/ice/session.js';
import { StunTransactionTable } from '../../src/turn/stun-transaction.js';
import { ManualClock } from '../helpers/manual-clock.js';

const CREDS = { ufrag: 'abcd', pwd: 'abcdefghijklmnopqrstuvwx' };

function cand(n: number, type: CandidateType = 'host', priority = candidatePriority(type, 65535 - n)): IceCandidate {
  const address = `192.0.2.${n}`;
  return { foundation: foundationOf(type, address), component: 1, transport: 'udp', priority, address, port: 7000, family: 4, type };
}

function base(): IceBase {
  const c = cand(100);
  return { id: 0, kind: 'socket', address: { address: c.address, port: 7000, family: 4 }, candidate: c, table: new StunTransactionTable({ clock: new ManualClock(), send: () => {} }), send: () => {} };
}

test('a new candidate is kept and returned for pairing; SDP text is parsed; a repeat is known', () => {
  const s = new IceSession(CREDS, 100);
  const c = cand(1);
  assert.equal(takeRemoteCandidate(s, c, 64, 'controlling'), c);
  assert.equal(takeRemoteCandidate(s, { ...c }, 64, 'controlling'), 'known');
  const fromText = takeRemoteCandidate(s, 'candidate:1 1 udp 2130706431 192.0.2.2 7000 typ host', 64, 'controlling');
  assert.equal(typeof fromText === 'object' && fromText.address, '192.0.2.2');
  assert.equal(s.remote.size, 2);
});

test('ignored: unparsable, TCP, component 2, or a full table', () => {
  const s = new IceSession(CREDS, 100);
  assert.equal(takeRemoteCandidate(s, 'not a candidate', 64, 'controlling'), 'ignored');
  assert.equal(takeRemoteCandidate(s, 'candidate:1 1 tcp 2130706431 192.0.2.3 7000 typ host', 64, 'controlling'), 'ignored');
  assert.equal(takeRemoteCandidate(s, { ...cand(4), component: 2 }, 64, 'controlling'), 'ignored');
  const five = cand(5);
  assert.equal(takeRemoteCandidate(s, five, 1, 'controlling'), five);
  assert.equal(takeRemoteCandidate(s, cand(6), 1, 'controlling'), 'ignored');
  assert.equal(s.remote.size, 1);
});

test('§7.3.1.3: a peer-reflexive entry named by signalling takes its type and priority, in the table and its pairs', () => {
  const s = new IceSession(CREDS, 100);
  const prflx = cand(7, 'prflx', 1000);
  s.remote.set(addressKey(prflx.address, prflx.port), prflx);
  const p = s.list.add(base(), prflx, 'controlling')!;
  const before = p.priority;
  const named = cand(7, 'srflx');
  assert.equal(takeRemoteCandidate(s, named, 1, 'controlling'), 'upgraded', 'replacing an entry does not count against the limit');
  assert.equal(s.remote.get(addressKey(named.address, named.port)), named);
  assert.equal(p.remote, named);
  assert.notEqual(p.priority, before, 'pairs re-prioritised');
  assert.equal(takeRemoteCandidate(s, cand(7, 'host'), 64, 'controlling'), 'known', 'a signalled type is not replaced again');
});

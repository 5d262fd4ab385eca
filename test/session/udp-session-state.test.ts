import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../src/core/errors.js';
import { canMoveUdpSession, nextUdpSessionState, type UdpSessionState } from '../../src/session/udp-session-state.js';
import { UdpSession, type UdpSessionOwner } from '../../src/session/udp-session.js';

const ALL: readonly UdpSessionState[] = ['opening', 'open', 'closed'];
const ALLOWED = new Set(['opening>open', 'opening>closed', 'open>closed']);

test('UDP session state table: exactly opening→open, opening→closed and open→closed are allowed; every other move throws SLUICE_ERR_STATE naming it', () => {
  for (const from of ALL) {
    for (const to of ALL) {
      const ok = ALLOWED.has(`${from}>${to}`);
      assert.equal(canMoveUdpSession(from, to), ok, `${from} → ${to}`);
      if (ok) assert.equal(nextUdpSessionState(from, to), to);
      else assert.throws(() => nextUdpSessionState(from, to), (e) => isSluiceError(e, 'SLUICE_ERR_STATE') && e.message === `UDP session: ${from} → ${to} is not a legal move`);
    }
  }
});

test('a UdpSession starts opening and changes state only through the guarded move', () => {
  const owner: UdpSessionOwner = { toClient() {}, upstreamFailed() {}, countSendError() {}, wallEpoch: 0 };
  const s = new UdpSession(owner, 1, 'r', { address: '192.0.2.1', port: 1, family: 4 }, 1, '192.0.2.1', 1, 0, 0, 0);
  assert.equal(s.state, 'opening');
  s.move('open');
  assert.equal(s.state, 'open');
  assert.throws(() => s.move('opening'), (e) => isSluiceError(e, 'SLUICE_ERR_STATE'));
  s.move('closed');
  assert.equal(s.state, 'closed');
  assert.throws(() => s.move('closed'), (e) => isSluiceError(e, 'SLUICE_ERR_STATE'), 'closed is final: ending twice is the caller’s idempotence, not a move');
  assert.throws(() => ((s as unknown as { state: string }).state = 'open'), TypeError, 'no assignment from outside');
});

test('a UdpSession gives back its exact wall-clock start, kept as an offset from its table’s epoch, and its offload attempt tick', () => {
  const epoch = Date.UTC(2026, 11, 7, 2, 0, 0, 0);
  const owner: UdpSessionOwner = { toClient() {}, upstreamFailed() {}, countSendError() {}, wallEpoch: epoch };
  for (const wall of [epoch, epoch + 123_457, epoch - 5, epoch + 30 * 86_400_000 + 1]) {
    const s = new UdpSession(owner, 1, 'r', { address: '192.0.2.1', port: 1, family: 4 }, 1, '192.0.2.1', 1, 0, wall, 0);
    assert.equal(s.startedWall, wall);
    assert.equal(s.offloadTried, -1, 'no attempt yet');
    s.offloadTried = 7;
    assert.equal(s.offloadTried, 7);
  }
});

test('a UdpSession is unanswered until told otherwise, whatever its state', () => {
  const owner: UdpSessionOwner = { toClient() {}, upstreamFailed() {}, countSendError() {}, wallEpoch: 0 };
  const s = new UdpSession(owner, 1, 'r', { address: '192.0.2.1', port: 1, family: 4 }, 1, '192.0.2.1', 1, 0, 0, 0);
  assert.equal(s.unanswered, true);
  s.move('open');
  assert.equal(s.unanswered, true);
  s.unanswered = false;
  assert.equal(s.unanswered, false);
  assert.equal(s.state, 'open');
  s.move('closed');
  assert.equal(s.state, 'closed');
  assert.equal(s.unanswered, false);
  s.unanswered = true;
  assert.equal(s.unanswered, true);
  assert.equal(s.state, 'closed');
});

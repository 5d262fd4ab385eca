import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FrameType, MAX_FRAME_BYTES, PRE_AUTH_MAX_FRAME_BYTES, SENT_BY, encodeControlMessage, frameTypeName, initialPhase, maxFrameBytesFor,
  receiveTransition, type ControlMessageType, type ControlPhase, type TunnelRole,
} from '../../../src/protocol/tunnel/index.js';
import { GOLDEN } from './golden.js';
import { assertTunnelError } from './helpers.js';

const ALL = Object.values(FrameType).map((b) => frameTypeName(b)!);
const HANDSHAKE = new Set<ControlMessageType>(['hello', 'challenge', 'auth', 'auth-ok', 'auth-error']);

test('the gateway accepts HELLO, then AUTH, then only post-auth agent messages', () => {
  let p = initialPhase('gateway');
  assert.equal(p, 'await-hello');
  for (const t of ALL.filter((t) => t !== 'hello' && t !== 'goaway')) assertTunnelError(() => receiveTransition('gateway', 'await-hello', t), 'unexpected-message');
  p = receiveTransition('gateway', p, 'hello');
  assert.equal(p, 'await-auth');
  for (const t of ALL.filter((t) => t !== 'auth' && t !== 'goaway')) assertTunnelError(() => receiveTransition('gateway', 'await-auth', t), 'unexpected-message');
  p = receiveTransition('gateway', p, 'auth');
  assert.equal(p, 'open');
  for (const t of ALL) {
    const allowed = !HANDSHAKE.has(t) && SENT_BY[t] !== 'gateway';
    if (allowed) assert.equal(receiveTransition('gateway', 'open', t), t === 'goaway' ? 'closed' : 'open', t);
    else assertTunnelError(() => receiveTransition('gateway', 'open', t), 'unexpected-message');
  }
});

test('the agent accepts CHALLENGE, then AUTH_OK or AUTH_ERROR, then only gateway messages', () => {
  let p = initialPhase('agent');
  assert.equal(p, 'await-challenge');
  for (const t of ALL.filter((t) => t !== 'challenge' && t !== 'goaway')) assertTunnelError(() => receiveTransition('agent', p, t), 'unexpected-message');
  p = receiveTransition('agent', p, 'challenge');
  assert.equal(p, 'await-auth-result');
  assert.equal(receiveTransition('agent', p, 'auth-error'), 'closed');
  for (const t of ALL.filter((t) => !['auth-ok', 'auth-error', 'goaway'].includes(t))) assertTunnelError(() => receiveTransition('agent', p, t), 'unexpected-message');
  p = receiveTransition('agent', p, 'auth-ok');
  assert.equal(p, 'open');
  for (const t of ALL) {
    const allowed = !HANDSHAKE.has(t) && SENT_BY[t] !== 'agent';
    if (allowed) assert.equal(receiveTransition('agent', 'open', t), t === 'goaway' ? 'closed' : 'open', t);
    else assertTunnelError(() => receiveTransition('agent', 'open', t), 'unexpected-message');
  }
});

test('GOAWAY closes from every live phase; nothing is accepted once closed', () => {
  const live: [TunnelRole, ControlPhase][] = [['gateway', 'await-hello'], ['gateway', 'await-auth'], ['gateway', 'open'], ['agent', 'await-challenge'], ['agent', 'await-auth-result'], ['agent', 'open']];
  for (const [role, phase] of live) assert.equal(receiveTransition(role, phase, 'goaway'), 'closed');
  for (const role of ['agent', 'gateway'] as const) for (const t of ALL) assertTunnelError(() => receiveTransition(role, 'closed', t), 'unexpected-message');
});

test('every message type has a sender and a golden frame; pre-auth frames fit the pre-auth limit', () => {
  for (const t of ALL) assert.ok(SENT_BY[t], t);
  for (const g of GOLDEN) {
    if (HANDSHAKE.has(g.message.type) || g.message.type === 'goaway') {
      assert.ok(encodeControlMessage(g.message).length - 4 <= PRE_AUTH_MAX_FRAME_BYTES, g.name);
    }
  }
  const longestHello = encodeControlMessage({ type: 'hello', version: 1, name: 'x'.repeat(64), datagramKeyId: 1, resumeKeyId: 1, streamWindow: 1 });
  assert.ok(longestHello.length - 4 <= PRE_AUTH_MAX_FRAME_BYTES);
  for (const type of ['auth-error', 'goaway'] as const) {
    const longest = encodeControlMessage({ type, code: 'internal', message: 'x'.repeat(1000) });
    assert.ok(longest.length - 4 <= PRE_AUTH_MAX_FRAME_BYTES, type);
  }
  assert.equal(maxFrameBytesFor('await-hello'), PRE_AUTH_MAX_FRAME_BYTES);
  assert.equal(maxFrameBytesFor('await-auth'), PRE_AUTH_MAX_FRAME_BYTES);
  assert.equal(maxFrameBytesFor('open'), MAX_FRAME_BYTES);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBinding, iceDatagramKind, samePeer } from '../../src/ice/datagram-kind.js';
import type { IceCandidate } from '../../src/ice/candidate.js';

// Spec-derived: a Binding request header (RFC 8489 §5: type 0x0001, length 0, magic cookie, 96-bit id).
const BINDING_REQUEST = Buffer.from('000100002112a442b7e7a701bc34d686fa87dfae', 'hex');
const BINDING_SUCCESS = Buffer.from('010100002112a442b7e7a701bc34d686fa87dfae', 'hex');
const BINDING_INDICATION = Buffer.from('001100002112a442b7e7a701bc34d686fa87dfae', 'hex');
const ALLOCATE_REQUEST = Buffer.from('000300002112a442b7e7a701bc34d686fa87dfae', 'hex');

test('iceDatagramKind sorts by the first bytes only', () => {
  assert.equal(iceDatagramKind(Buffer.alloc(0)), 'other');
  assert.equal(iceDatagramKind(Buffer.from([0x0b])), 'ice-data');
  assert.equal(iceDatagramKind(Buffer.from([0x0b, 0x00, 0x01])), 'ice-data');
  assert.equal(iceDatagramKind(BINDING_REQUEST), 'stun-request');
  assert.equal(iceDatagramKind(ALLOCATE_REQUEST), 'stun-request', 'any method: the class bits alone');
  assert.equal(iceDatagramKind(BINDING_SUCCESS), 'stun');
  assert.equal(iceDatagramKind(BINDING_INDICATION), 'stun');
  assert.equal(iceDatagramKind(BINDING_REQUEST.subarray(0, 19)), 'stun', 'shorter than a STUN header: not a request');
  for (const first of [0x04, 0x0c, 0x14, 0x40, 0x80, 0xff]) assert.equal(iceDatagramKind(Buffer.from([first, 0, 0, 0])), 'other', `0x${first.toString(16)}`);
});

test('decodeBinding: Binding messages only; anything malformed is undefined, never thrown', () => {
  const req = decodeBinding(BINDING_REQUEST);
  assert.equal(req?.cls, 'request');
  assert.equal(decodeBinding(BINDING_SUCCESS)?.cls, 'success');
  assert.equal(decodeBinding(ALLOCATE_REQUEST), undefined);
  assert.equal(decodeBinding(Buffer.alloc(0)), undefined);
  assert.equal(decodeBinding(BINDING_REQUEST.subarray(0, 19)), undefined);
  assert.equal(decodeBinding(Buffer.concat([BINDING_REQUEST, Buffer.from([0])])), undefined, 'trailing byte');
  const overrun = Buffer.from(BINDING_REQUEST);
  overrun.writeUInt16BE(8, 2);
  assert.equal(decodeBinding(overrun), undefined, 'length past the datagram');
});

test('samePeer: exact address and port, or the IPv4-mapped spelling of a dual-stack socket', () => {
  const c = { address: '192.0.2.7', port: 7000 } as IceCandidate;
  assert.equal(samePeer(c, { address: '192.0.2.7', port: 7000 }), true);
  assert.equal(samePeer(c, { address: '::ffff:192.0.2.7', port: 7000 }), true);
  assert.equal(samePeer(c, { address: '192.0.2.7', port: 7001 }), false);
  assert.equal(samePeer(c, { address: '192.0.2.8', port: 7000 }), false);
});

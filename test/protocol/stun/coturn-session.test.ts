import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ErrorCode, Lifetime, Nonce, Realm, RequestedTransport, Software, StunMethod, Username, XorMappedAddress,
  XorRelayedAddress, decodeStunDatagram, getAttribute, longTermKey, verifyIntegrity, type DecodedStunMessage,
} from '../../../src/protocol/stun/index.js';
import { jsonVector } from './vectors.js';

interface CoturnSession {
  user: string;
  password: string;
  realm: string;
  key_md5_hex: string;
  allocate_401_response_hex: string;
  allocate_request_authenticated_hex: string;
  allocate_success_response_hex: string;
}

const v = jsonVector<CoturnSession>('turn/coturn-session.json');
const key = longTermKey(v.user, v.realm, v.password);
const decode = (hex: string): DecodedStunMessage => decodeStunDatagram(Buffer.from(hex, 'hex'))!;

test('coturn session: long-term key matches the captured one', () => {
  assert.equal(key.toString('hex'), v.key_md5_hex);
});

test('coturn 401 Allocate response: REALM, NONCE, valid fingerprint, no integrity', () => {
  const m = decode(v.allocate_401_response_hex);
  assert.equal(m.cls, 'error');
  assert.equal(m.method, StunMethod.Allocate);
  assert.deepEqual(getAttribute(m, ErrorCode), { code: 401, reason: 'Unauthorized' });
  assert.equal(getAttribute(m, Realm), v.realm);
  assert.equal(getAttribute(m, Nonce)?.length, 16);
  assert.match(getAttribute(m, Software)!, /^Coturn-4\.6\.1/);
  assert.equal(m.fingerprint, 'valid');
  assert.equal(verifyIntegrity(m, key), 'absent');
});

test('coturn authenticated Allocate request: MESSAGE-INTEGRITY and FINGERPRINT recompute', () => {
  const m = decode(v.allocate_request_authenticated_hex);
  assert.equal(m.cls, 'request');
  assert.equal(m.method, StunMethod.Allocate);
  assert.equal(getAttribute(m, RequestedTransport), 17);
  assert.equal(getAttribute(m, Lifetime), 600);
  assert.equal(getAttribute(m, Username), v.user);
  assert.equal(getAttribute(m, Realm), v.realm);
  assert.equal(verifyIntegrity(m, key), 'ok');
  assert.equal(verifyIntegrity(m, longTermKey(v.user, v.realm, 'nope')), 'mismatch');
  assert.equal(m.fingerprint, 'valid');
});

test('coturn Allocate success: relayed and mapped addresses, integrity with the same key', () => {
  const m = decode(v.allocate_success_response_hex);
  assert.equal(m.cls, 'success');
  assert.equal(getAttribute(m, XorRelayedAddress)?.address, '127.0.0.1');
  assert.equal(getAttribute(m, XorMappedAddress)?.address, '127.0.0.1');
  assert.equal(getAttribute(m, Lifetime), 600);
  assert.equal(verifyIntegrity(m, key), 'ok');
  assert.equal(m.fingerprint, 'valid');
  const flipped = Buffer.from(m.raw);
  flipped[30]! ^= 1; // inside XOR-RELAYED-ADDRESS: integrity and fingerprint both break
  const bad = decodeStunDatagram(flipped)!;
  assert.equal(verifyIntegrity(bad, key), 'mismatch');
  assert.equal(bad.fingerprint, 'invalid');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  checkResponseAuthentic, encodeCheckError, encodeCheckRequest, encodeCheckSuccess, readCheckRequest, type CheckRequest,
} from '../../src/ice/check-message.js';
import { ICE_DATA_PREFIX, frameIceData, unframeIceData } from '../../src/ice/channel.js';
import {
  ErrorCode, Priority, StunAttr, UseCandidate, Username, XorMappedAddress, attr, classifyDatagram, decodeStunDatagram,
  encodeStunMessage, getAttribute, hasAttribute, randomTransactionId, shortTermKey, stunMessage, StunMethod, verifyIntegrity,
} from '../../src/protocol/stun/index.js';

const LOCAL = { ufrag: 'locl', pwd: 'local-password-0123456789' };
const REMOTE = { ufrag: 'rmte', pwd: 'remote-password-0123456789' };

/** A check the remote agent sends to us. */
function incoming(over: Partial<CheckRequest> = {}): Buffer {
  return encodeCheckRequest({ localUfrag: REMOTE.ufrag, remoteUfrag: LOCAL.ufrag, remotePwd: LOCAL.pwd, priority: 1853824767, role: 'controlling', tieBreaker: 42n, useCandidate: true, ...over });
}

test('a check carries USERNAME remote:local, PRIORITY, the role, USE-CANDIDATE, MI with the receiver\'s pwd, FINGERPRINT', () => {
  const m = decodeStunDatagram(incoming())!;
  assert.equal(getAttribute(m, Username), 'locl:rmte');
  assert.equal(getAttribute(m, Priority), 1853824767);
  assert.ok(hasAttribute(m, StunAttr.IceControlling));
  assert.ok(hasAttribute(m, StunAttr.UseCandidate));
  assert.equal(verifyIntegrity(m, shortTermKey(LOCAL.pwd)), 'ok');
  assert.equal(m.fingerprint, 'valid');
  assert.deepEqual(readCheckRequest(m, LOCAL.ufrag, LOCAL.pwd), {
    kind: 'check', remoteUfrag: 'rmte', priority: 1853824767, useCandidate: true, role: 'controlling', tieBreaker: 42n,
  });
});

test('verdicts: another ufrag is not ours; a wrong key is 401; no PRIORITY or no MI is 400', () => {
  assert.deepEqual(readCheckRequest(decodeStunDatagram(incoming({ remoteUfrag: 'else' }))!, LOCAL.ufrag, LOCAL.pwd), { kind: 'not-mine' });
  assert.deepEqual(readCheckRequest(decodeStunDatagram(incoming({ remotePwd: 'x'.repeat(22) }))!, LOCAL.ufrag, LOCAL.pwd), { kind: 'reject', code: 401 });
  const tid = randomTransactionId();
  const noPriority = encodeStunMessage(stunMessage('request', StunMethod.Binding, tid, [attr(Username, 'locl:rmte'), attr(UseCandidate, true)]), { integrityKey: shortTermKey(LOCAL.pwd), fingerprint: true });
  assert.deepEqual(readCheckRequest(decodeStunDatagram(noPriority)!, LOCAL.ufrag, LOCAL.pwd), { kind: 'reject', code: 400 });
  const noMi = encodeStunMessage(stunMessage('request', StunMethod.Binding, tid, [attr(Username, 'locl:rmte'), attr(Priority, 1)]));
  assert.deepEqual(readCheckRequest(decodeStunDatagram(noMi)!, LOCAL.ufrag, LOCAL.pwd), { kind: 'reject', code: 400 });
});

test('responses: success signed with our pwd carries the source; 487 signed; 401 unsigned', () => {
  const req = decodeStunDatagram(incoming())!;
  const ok = decodeStunDatagram(encodeCheckSuccess(req, { address: '203.0.113.5', port: 999, family: 4 }, LOCAL.pwd))!;
  assert.deepEqual(getAttribute(ok, XorMappedAddress), { address: '203.0.113.5', port: 999, family: 4 });
  assert.ok(checkResponseAuthentic(ok, LOCAL.pwd), 'the sender checks it with the pwd it signed the request with');
  assert.equal(checkResponseAuthentic(ok, REMOTE.pwd), false);
  const conflict = decodeStunDatagram(encodeCheckError(req, 487, LOCAL.pwd))!;
  assert.equal(getAttribute(conflict, ErrorCode)?.code, 487);
  assert.ok(checkResponseAuthentic(conflict, LOCAL.pwd));
  const unauthorized = decodeStunDatagram(encodeCheckError(req, 401, LOCAL.pwd))!;
  assert.equal(unauthorized.messageIntegrity, undefined);
  assert.ok(checkResponseAuthentic(unauthorized, LOCAL.pwd), 'an unsigned error is acceptable');
});

test('arbitrary and mutated requests give a verdict, never an exception', () => {
  const good = incoming();
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), (junk, at, byte) => {
    for (const buf of [Buffer.from(junk), Buffer.from(good).fill(byte, at, at + 1)]) {
      let m;
      try {
        m = decodeStunDatagram(buf);
      } catch {
        continue; // the codec's typed error; the agent drops such datagrams
      }
      if (m?.cls === 'request') readCheckRequest(m, LOCAL.ufrag, LOCAL.pwd);
    }
  }), { numRuns: 2000 });
});

test('the data prefix: 0x0b, outside STUN and ChannelData, so every framed datagram classifies as the application\'s', () => {
  assert.equal(ICE_DATA_PREFIX, 0x0b);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (d) => {
    const framed = frameIceData(d);
    return classifyDatagram(framed) === 'application' && framed.length === d.length + 1 && Buffer.compare(unframeIceData(framed)!, Buffer.from(d)) === 0;
  }));
  assert.equal(unframeIceData(Buffer.from([0x00, 0x01])), undefined);
  assert.equal(unframeIceData(Buffer.alloc(0)), undefined);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../../src/core/errors.js';
import { keyAlgorithmOf, longTermKey, prepareCredential, shortTermKey, userHash } from '../../../src/protocol/stun/index.js';

test('ASCII credentials pass through preparation unchanged', () => {
  for (const s of ['alice', 'secret123', 'VOkJxbRl1RmTxUk/WvJxBt', 'with space', '']) assert.equal(prepareCredential(s), s);
});

test('preparation maps soft hyphens away, non-ASCII spaces to U+0020, and applies NFKC', () => {
  assert.equal(prepareCredential('The\u00ADM\u00AAtr\u2168'), 'TheMatrIX');
  assert.equal(prepareCredential('a\u00A0b'), 'a b');
  assert.equal(prepareCredential('\uFF21'), 'A'); // fullwidth A
});

test('preparation rejects control and private-use code points with the typed error', () => {
  for (const s of ['a\u0007b', 'x\uE000', 'caf\u00e9\u0085']) {
    assert.throws(() => prepareCredential(s), (e) => isSluiceError(e, 'SLUICE_ERR_STUN_INVALID'), JSON.stringify(s));
  }
});

test('keys: short-term is the UTF-8 password; long-term is MD5 or SHA-256 of user:realm:pass', () => {
  assert.deepEqual(shortTermKey('pw'), Buffer.from('pw'));
  assert.equal(longTermKey('alice', 'relay.test', 'secret123').toString('hex'), '1a5562afd57c0fc7dd519424e474e3bf');
  assert.equal(longTermKey('alice', 'relay.test', 'secret123', 'sha256').length, 32);
  assert.equal(userHash('alice', 'relay.test').length, 32);
  assert.equal(keyAlgorithmOf(1), 'md5');
  assert.equal(keyAlgorithmOf(2), 'sha256');
  assert.equal(keyAlgorithmOf(3), undefined);
});

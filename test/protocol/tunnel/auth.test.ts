import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  computeAuthDigest, computeGatewayProof, createChallengeNonce, exportAuthBinding, exportDatagramKeys, verifyAuthDigest, verifyGatewayProof,
  type AuthInput, type TlsSessionLike,
} from '../../../src/protocol/tunnel/index.js';
import { assertTunnelError } from './helpers.js';

const input: AuthInput = {
  token: 's3cret-token',
  nonce: Buffer.alloc(32, 0x11),
  binding: Buffer.alloc(32, 0x22),
  agentName: 'home',
};

/** HMAC-SHA256(token, label 0x00 | nonce | binding | u8 len | name), built from the documented layout. */
function reference(label: string, i: AuthInput): string {
  return createHmac('sha256', Buffer.from(i.token as string))
    .update(Buffer.concat([Buffer.from(`${label}\0`), i.nonce, i.binding, Buffer.from([i.agentName.length]), Buffer.from(i.agentName)]))
    .digest('hex');
}

test('digest and proof follow the documented construction and differ from each other', () => {
  const digest = computeAuthDigest(input);
  const proof = computeGatewayProof(input);
  assert.equal(digest.toString('hex'), reference('sluice-tunnel-v1 agent-auth', input));
  assert.equal(proof.toString('hex'), reference('sluice-tunnel-v1 gateway-proof', input));
  assert.notDeepEqual(digest, proof);
  assert.equal(verifyAuthDigest(input, digest), true);
  assert.equal(verifyGatewayProof(input, proof), true);
  assert.equal(verifyAuthDigest(input, proof), false, "the gateway's proof is not a valid agent answer");
  assert.equal(verifyGatewayProof(input, digest), false);
});

test('every input changes the digest: token, nonce, binding, name', () => {
  const digest = computeAuthDigest(input);
  const variants: AuthInput[] = [
    { ...input, token: 's3cret-tokeN' },
    { ...input, nonce: Buffer.alloc(32, 0x12) },
    { ...input, binding: Buffer.alloc(32, 0x23) },
    { ...input, agentName: 'homf' },
    { ...input, agentName: 'home2' },
  ];
  for (const v of variants) assert.equal(verifyAuthDigest(v, digest), false, JSON.stringify(v));
  assert.equal(verifyAuthDigest({ ...input, token: Buffer.from('s3cret-token') }, digest), true, 'string and bytes tokens agree');
});

test('digests of the wrong length are refused without throwing', () => {
  const digest = computeAuthDigest(input);
  assert.equal(verifyAuthDigest(input, digest.subarray(0, 31)), false);
  assert.equal(verifyAuthDigest(input, Buffer.concat([digest, Buffer.alloc(1)])), false);
  assert.equal(verifyAuthDigest(input, Buffer.alloc(0)), false);
});

test('bad inputs are typed errors', () => {
  assertTunnelError(() => computeAuthDigest({ ...input, nonce: Buffer.alloc(16) }), 'bad-key');
  assertTunnelError(() => computeAuthDigest({ ...input, binding: Buffer.alloc(0) }), 'bad-key');
  assertTunnelError(() => computeAuthDigest({ ...input, token: '' }), 'bad-key');
  assertTunnelError(() => computeAuthDigest({ ...input, agentName: 'a b' }), 'bad-name');
  assertTunnelError(() => createChallengeNonce(() => Buffer.alloc(8)), 'bad-key');
});

test('nonces are 32 fresh random bytes', () => {
  const a = createChallengeNonce();
  const b = createChallengeNonce();
  assert.equal(a.length, 32);
  assert.notDeepEqual(a, b);
});

test('binding and datagram keys require TLS 1.3 and a working exporter', () => {
  const fake = (protocol: string | null, fail = false): TlsSessionLike => ({
    getProtocol: () => protocol,
    exportKeyingMaterial: (n: number) => {
      if (fail) throw new Error('not connected');
      return Buffer.alloc(n, 1);
    },
  });
  assertTunnelError(() => exportAuthBinding(fake('TLSv1.2')), 'tls-binding');
  assertTunnelError(() => exportAuthBinding(fake(null)), 'tls-binding');
  assertTunnelError(() => exportDatagramKeys(fake('TLSv1.2'), 'agent'), 'tls-binding');
  assertTunnelError(() => exportAuthBinding(fake('TLSv1.3', true)), 'tls-binding');
  assert.equal(exportAuthBinding(fake('TLSv1.3')).length, 32);
});

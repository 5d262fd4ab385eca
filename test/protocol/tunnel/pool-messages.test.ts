import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  computeGroupProof, decodeControlFrame, encodeControlMessage, receiveTransition, verifyGroupProof, type GroupProofInput,
} from '../../../src/protocol/tunnel/index.js';
import { assertTunnelError } from './helpers.js';
import { hexBytes } from './golden.js';

const input: GroupProofInput = { key: 'group-key-0123456789', binding: Buffer.alloc(32, 0x22), agentName: 'home', group: 'ha' };
const decode = (hex: string) => decodeControlFrame(hexBytes(hex));

test('group proof: HMAC-SHA256(key, label 0x00 | binding | u8 len | agent | u8 len | group), built from the documented layout', () => {
  const expected = createHmac('sha256', Buffer.from(input.key))
    .update(Buffer.concat([Buffer.from('sluice-tunnel-v1 group-join\0'), input.binding, Buffer.from([4]), Buffer.from('home'), Buffer.from([2]), Buffer.from('ha')]))
    .digest('hex');
  assert.equal(computeGroupProof(input).toString('hex'), expected);
  assert.equal(verifyGroupProof(input, computeGroupProof(input)), true);
});

test('group proof: every input changes it (key, TLS binding, agent, group), so it cannot be replayed or lent', () => {
  const proof = computeGroupProof(input);
  for (const v of [
    { ...input, key: 'group-key-0123456788' },
    { ...input, binding: Buffer.alloc(32, 0x23) },
    { ...input, agentName: 'office' },
    { ...input, group: 'hb' },
    // The length prefixes keep "ho"+"meha" apart from "home"+"ha".
    { ...input, agentName: 'ho', group: 'meha' },
  ]) assert.equal(verifyGroupProof(v, proof), false, JSON.stringify({ ...v, binding: v.binding.toString('hex') }));
});

test('group proof: wrong lengths are refused without throwing; bad inputs are typed errors', () => {
  const proof = computeGroupProof(input);
  assert.equal(verifyGroupProof(input, proof.subarray(0, 31)), false);
  assert.equal(verifyGroupProof(input, Buffer.concat([proof, Buffer.alloc(1)])), false);
  assert.equal(verifyGroupProof(input, Buffer.alloc(0)), false);
  assertTunnelError(() => computeGroupProof({ ...input, binding: Buffer.alloc(16) }), 'bad-key');
  assertTunnelError(() => computeGroupProof({ ...input, key: '' }), 'bad-key');
  assertTunnelError(() => computeGroupProof({ ...input, group: 'a b' }), 'bad-name');
});

test('publish pool part: undefined flag bits, health without a pool, a short proof and a bad group name are refused', () => {
  const head = '10 0001 02 01 04 4e21 00000000 02 7767';
  assertTunnelError(() => decode(`00000033 ${head} 14 02 6861 ${'77'.repeat(32)}`), 'malformed'); // flag bit 4
  assertTunnelError(() => decode(`00000033 ${head} 08 02 6861 ${'77'.repeat(32)}`), 'malformed'); // health without a pool
  assertTunnelError(() => decode(`00000032 ${head} 04 02 6861 ${'77'.repeat(31)}`), 'malformed'); // 31-byte proof
  assertTunnelError(() => decode(`00000033 ${head} 04 02 2e61 ${'77'.repeat(32)}`), 'bad-name');
  assertTunnelError(() => decode(`00000010 ${head} 04`), 'malformed'); // flags alone
  assertTunnelError(
    () => encodeControlMessage({ type: 'publish', serviceId: 1, name: 'wg', transport: 'udp', remote: { address: '0.0.0.0', port: 1, family: 4 }, proxyProtocol: 'off', pool: { group: 'ha', proof: Buffer.alloc(31), healthReported: false } }),
    'bad-value',
  );
});

test('service-health: states other than up (1) and down (2) are refused', () => {
  assertTunnelError(() => decode('00000006 15 0001 00 0000'), 'malformed');
  assertTunnelError(() => decode('00000006 15 0001 03 0000'), 'malformed');
  assertTunnelError(() => decode('00000004 15 0001 01'), 'malformed');
});

test('service-health is sent by agents only, after authentication', () => {
  assert.equal(receiveTransition('gateway', 'open', 'service-health'), 'open');
  assertTunnelError(() => receiveTransition('agent', 'open', 'service-health'), 'unexpected-message');
  assertTunnelError(() => receiveTransition('gateway', 'await-auth', 'service-health'), 'unexpected-message');
});

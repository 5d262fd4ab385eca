import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { classifyDatagram } from '../../../src/protocol/stun/index.js';
import {
  DatagramOpener, DatagramSealer, MAX_DATAGRAM_PAYLOAD_BYTES, MAX_UDP_PAYLOAD_BYTES, datagramKeysFromMaterial, encodeOriginBlock,
  isTunnelDatagram, readUnverifiedHeader, type Direction,
} from '../../../src/protocol/tunnel/index.js';
import { hexBytes } from './golden.js';
import { assertTunnelError } from './helpers.js';

const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const ORIGIN = { serviceId: 3, client: { address: '198.51.100.7', port: 40000, family: 4 as const } };

/**
 * Seals with node:crypto directly from the layout in docs/tunnel-protocol.md, independently of
 * DatagramSealer: nonce = u32 direction | u16 0 | u48 sequence; AAD = the 16-byte header.
 */
function referenceSeal(key: Buffer, direction: Direction, headerHex: string, plaintext: Buffer): Buffer {
  const header = hexBytes(headerHex);
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(direction === 'agent-to-gateway' ? 1 : 2, 0);
  nonce.writeUIntBE(header.readUIntBE(10, 6), 6, 6);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  c.setAAD(header, { plaintextLength: plaintext.length });
  return Buffer.concat([header, c.update(plaintext), c.final(), c.getAuthTag()]);
}

const pair = (direction: Direction = 'gateway-to-agent', keyId = 0x0a0b0c0d) => ({
  sealer: new DatagramSealer({ key: KEY, direction, peerKeyId: keyId }),
  opener: new DatagramOpener({ key: KEY, direction, keyId }),
});

test('golden: data datagram with origin (header bytes and independent AEAD construction)', () => {
  const { sealer, opener } = pair();
  const d = sealer.sealData(7, Buffer.from('ping'), encodeOriginBlock(ORIGIN));
  const header = '0c 01 0a0b0c0d 00000007 000000000000';
  assert.equal(d.subarray(0, 16).toString('hex'), hexBytes(header).toString('hex'));
  const plaintext = hexBytes('0003 04 9c40 c6336407 70696e67');
  assert.equal(d.toString('hex'), referenceSeal(KEY, 'gateway-to-agent', header, plaintext).toString('hex'));
  assert.equal(d.length, 16 + 9 + 4 + 16);
  const r = opener.open(d);
  assert.deepEqual(r, { ok: true, datagram: { kind: 'data', sequence: 0, newest: true, tag: 7, origin: ORIGIN, payload: Buffer.from('ping') } });
});

test('golden: data without origin, keepalive and keepalive-ack, sequences counting up', () => {
  const { sealer, opener } = pair('agent-to-gateway', 0xfffffffe);
  const d = sealer.sealData(0xffffffff, Buffer.alloc(0));
  assert.equal(d.toString('hex'), referenceSeal(KEY, 'agent-to-gateway', '0c 00 fffffffe ffffffff 000000000000', Buffer.alloc(0)).toString('hex'));
  const k = sealer.sealKeepalive(0x01020304);
  assert.equal(k.toString('hex'), referenceSeal(KEY, 'agent-to-gateway', '0d 00 fffffffe 00000000 000000000001', hexBytes('01020304')).toString('hex'));
  const a = sealer.sealKeepaliveAck(0x01020304);
  assert.equal(a.toString('hex'), referenceSeal(KEY, 'agent-to-gateway', '0e 00 fffffffe 00000000 000000000002', hexBytes('01020304')).toString('hex'));
  assert.equal(k.length, 36);
  assert.equal(a.length, k.length, 'an ack is never larger than the keepalive it answers (amplification factor 1)');
  assert.equal(sealer.nextSequence, 3);
  assert.deepEqual(opener.open(d), { ok: true, datagram: { kind: 'data', sequence: 0, newest: true, tag: 0xffffffff, origin: undefined, payload: Buffer.alloc(0) } });
  assert.deepEqual(opener.open(k), { ok: true, datagram: { kind: 'keepalive', sequence: 1, newest: true, counter: 0x01020304 } });
  assert.deepEqual(opener.open(a), { ok: true, datagram: { kind: 'keepalive-ack', sequence: 2, newest: true, counter: 0x01020304 } });
});

test('golden: IPv6 origin block', () => {
  const o = encodeOriginBlock({ serviceId: 0x1234, client: { address: '2001:db8::1', port: 443, family: 6 } });
  assert.equal(o.toString('hex'), '1234' + '06' + '01bb' + '20010db8000000000000000000000001');
});

test('the first byte is 12-14: outside STUN (0-3) and TURN ChannelData (64-79), so the shared-socket demux passes it through', () => {
  const { sealer } = pair();
  for (const d of [sealer.sealData(1, Buffer.from('x')), sealer.sealKeepalive(0), sealer.sealKeepaliveAck(0)]) {
    assert.ok(d[0]! >= 4 && d[0]! <= 15);
    assert.equal(classifyDatagram(d), 'application');
    assert.ok(isTunnelDatagram(d));
  }
  assert.ok(!isTunnelDatagram(hexBytes('000100002112a442000000000000000000000000')));
  assert.ok(!isTunnelDatagram(hexBytes('40000004deadbeef')));
  assert.ok(!isTunnelDatagram(Buffer.alloc(0)));
});

test('readUnverifiedHeader gives the key id for demultiplexing, and refuses what cannot be a datagram', () => {
  const { sealer } = pair();
  const d = sealer.sealData(9, Buffer.from('abc'));
  assert.deepEqual(readUnverifiedHeader(d), { kind: 'data', flags: 0, keyId: 0x0a0b0c0d, tag: 9, sequence: 0 });
  assert.equal(readUnverifiedHeader(d.subarray(0, 31)), undefined);
  const bad = (hex: string) => readUnverifiedHeader(Buffer.concat([hexBytes(hex), Buffer.alloc(16)]));
  assert.equal(bad('0c 02 00000001 00000001 000000000000'), undefined, 'undefined flag bit');
  assert.equal(bad('0c 00 00000001 00000000 000000000000'), undefined, 'data with tag 0');
  assert.equal(bad('0d 01 00000001 00000000 000000000000'), undefined, 'keepalive with origin flag');
  assert.equal(bad('0d 00 00000001 00000001 000000000000'), undefined, 'keepalive with a tag');
  assert.equal(bad('0f 00 00000001 00000000 000000000000'), undefined, 'unknown type');
  assert.deepEqual(bad('0e 00 00000001 00000000 ffffffffffff'), { kind: 'keepalive-ack', flags: 0, keyId: 1, tag: 0, sequence: 2 ** 48 - 1 });
});

test('replays are refused; reordering inside the window is fine; `newest` marks only datagrams that raise the top', () => {
  const { sealer, opener } = pair();
  const ds = [0, 1, 2].map((i) => sealer.sealData(1, Buffer.from([i])));
  const open = (d: Buffer) => opener.open(d);
  assert.equal((open(ds[2]!) as { datagram: { newest: boolean } }).datagram.newest, true);
  assert.equal((open(ds[0]!) as { datagram: { newest: boolean } }).datagram.newest, false);
  assert.deepEqual(open(ds[0]!), { ok: false, reason: 'replayed' });
  assert.deepEqual(open(ds[2]!), { ok: false, reason: 'replayed' });
  assert.equal(open(ds[1]!).ok, true);
  assert.equal(opener.highestSequence, 2);
});

test('too-old datagrams are refused before decryption', () => {
  const sealer = new DatagramSealer({ key: KEY, direction: 'gateway-to-agent', peerKeyId: 1 });
  const opener = new DatagramOpener({ key: KEY, direction: 'gateway-to-agent', keyId: 1, replayWindow: 32 });
  const first = sealer.sealKeepalive(0);
  for (let i = 0; i < 40; i++) sealer.sealKeepalive(i);
  assert.equal(opener.open(sealer.sealKeepalive(99)).ok, true);
  assert.deepEqual(opener.open(first), { ok: false, reason: 'too-old' });
  assert.equal(opener.authFailures, 0);
});

test('a forged datagram never moves the window or the top, and is counted', () => {
  const { sealer, opener } = pair();
  const forged = sealer.sealData(1, Buffer.from('x'));
  forged.writeUIntBE(2 ** 40, 10, 6); // claims a far-ahead sequence
  assert.deepEqual(opener.open(forged), { ok: false, reason: 'auth-failed' });
  assert.equal(opener.highestSequence, -1);
  assert.equal(opener.authFailures, 1);
  const next = new DatagramSealer({ key: KEY, direction: 'gateway-to-agent', peerKeyId: 0x0a0b0c0d });
  assert.equal(opener.open(next.sealData(1, Buffer.from('x'))).ok, true, 'sequence 0 still accepted');
});

test('any change to header, ciphertext or tag fails; a wrong key id is refused before crypto', () => {
  const { sealer } = pair();
  const d = sealer.sealData(7, Buffer.from('hello, world'), encodeOriginBlock(ORIGIN));
  for (let i = 0; i < d.length; i++) {
    const opener = new DatagramOpener({ key: KEY, direction: 'gateway-to-agent', keyId: 0x0a0b0c0d });
    const m = Buffer.from(d);
    m[i]! ^= 0x01;
    const r = opener.open(m);
    assert.equal(r.ok, false, `byte ${i}`);
    if (i >= 2 && i < 6) assert.deepEqual(r, { ok: false, reason: 'unknown-key' });
    if (i >= 6 && i !== 9 && i !== 1 && i !== 0) assert.ok(!r.ok && (r.reason === 'auth-failed' || r.reason === 'malformed'), `byte ${i}: ${JSON.stringify(r)}`);
  }
});

test('a datagram opened with the other direction or the other key fails (no reflection)', () => {
  const material = Buffer.from(Array.from({ length: 64 }, (_, i) => 255 - i));
  const agent = datagramKeysFromMaterial(material, 'agent');
  const gateway = datagramKeysFromMaterial(material, 'gateway');
  assert.deepEqual(agent.send, gateway.receive);
  assert.deepEqual(agent.receive, gateway.send);
  assert.notDeepEqual(agent.send, agent.receive);
  const up = new DatagramSealer({ key: agent.send, direction: agent.sendDirection, peerKeyId: 5 });
  const d = up.sealKeepalive(1);
  const gwOpener = new DatagramOpener({ key: gateway.receive, direction: gateway.receiveDirection, keyId: 5 });
  const agentOpener = new DatagramOpener({ key: agent.receive, direction: agent.receiveDirection, keyId: 5 });
  const sameKeyWrongDirection = new DatagramOpener({ key: agent.send, direction: 'gateway-to-agent', keyId: 5 });
  assert.deepEqual(agentOpener.open(d), { ok: false, reason: 'auth-failed' }, 'reflected back to the agent');
  assert.deepEqual(sameKeyWrongDirection.open(d), { ok: false, reason: 'auth-failed' }, 'direction is in the nonce');
  assert.equal(gwOpener.open(d).ok, true);
});

test('authentic datagrams whose plaintext breaks the layout are refused as bad-plaintext', () => {
  const opener = new DatagramOpener({ key: KEY, direction: 'gateway-to-agent', keyId: 1 });
  const short = referenceSeal(KEY, 'gateway-to-agent', '0d 00 00000001 00000000 000000000000', hexBytes('010203'));
  assert.deepEqual(opener.open(short), { ok: false, reason: 'bad-plaintext' });
  const truncatedOrigin = referenceSeal(KEY, 'gateway-to-agent', '0c 01 00000001 00000001 000000000001', hexBytes('0003 04 9c40 c633'));
  assert.deepEqual(opener.open(truncatedOrigin), { ok: false, reason: 'bad-plaintext' });
  const badFamily = referenceSeal(KEY, 'gateway-to-agent', '0c 01 00000001 00000001 000000000002', hexBytes('0003 05 9c40 c6336407'));
  assert.deepEqual(opener.open(badFamily), { ok: false, reason: 'bad-plaintext' });
  assert.equal(opener.highestSequence, -1, 'not marked');
});

test('size limits: the largest payload with an IPv6 origin is exactly the largest UDP payload', () => {
  const { sealer, opener } = pair();
  const origin6 = encodeOriginBlock({ serviceId: 1, client: { address: '2001:db8::1', port: 1, family: 6 } });
  const d = sealer.sealData(1, Buffer.alloc(MAX_DATAGRAM_PAYLOAD_BYTES, 0x61), origin6);
  assert.equal(d.length, MAX_UDP_PAYLOAD_BYTES);
  assert.equal(opener.open(d).ok, true);
  assertTunnelError(() => sealer.sealData(1, Buffer.alloc(MAX_DATAGRAM_PAYLOAD_BYTES + 1)), 'bad-value');
});

test('sealer and opener refuse bad inputs with typed errors', () => {
  const { sealer } = pair();
  assertTunnelError(() => sealer.sealData(0, Buffer.alloc(1)), 'bad-value');
  assertTunnelError(() => sealer.sealData(2 ** 32, Buffer.alloc(1)), 'bad-value');
  assertTunnelError(() => sealer.sealData(1, Buffer.alloc(1), Buffer.alloc(5)), 'bad-value');
  assertTunnelError(() => sealer.sealKeepalive(-1), 'bad-value');
  assertTunnelError(() => new DatagramSealer({ key: Buffer.alloc(16), direction: 'agent-to-gateway', peerKeyId: 1 }), 'bad-key');
  assertTunnelError(() => new DatagramOpener({ key: Buffer.alloc(33), direction: 'agent-to-gateway', keyId: 1 }), 'bad-key');
  assertTunnelError(() => new DatagramOpener({ key: KEY, direction: 'agent-to-gateway', keyId: -1 }), 'bad-value');
  assertTunnelError(() => datagramKeysFromMaterial(Buffer.alloc(32), 'agent'), 'bad-key');
  assertTunnelError(() => encodeOriginBlock({ serviceId: 70000, client: ORIGIN.client }), 'bad-value');
  assertTunnelError(() => encodeOriginBlock({ serviceId: 1, client: { address: 'host', port: 1, family: 4 } }), 'bad-value');
});

test('the sealer copies its key: changing the caller buffer later changes nothing', () => {
  const key = Buffer.from(KEY);
  const sealer = new DatagramSealer({ key, direction: 'agent-to-gateway', peerKeyId: 1 });
  const opener = new DatagramOpener({ key, direction: 'agent-to-gateway', keyId: 1 });
  key.fill(0);
  assert.equal(opener.open(sealer.sealKeepalive(1)).ok, true);
});

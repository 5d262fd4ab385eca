import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import {
  DatagramOpener, DatagramSealer, MAX_DATAGRAM_PAYLOAD_BYTES, MAX_UDP_PAYLOAD_BYTES, decodeControlFrame, encodeControlMessage, encodeOriginBlock,
  readUnverifiedHeader, type ControlMessage,
} from '../../../src/protocol/tunnel/index.js';
import { hexBytes } from './golden.js';
import { assertTunnelError } from './helpers.js';

/* PUBLISH of a port range or by name, and origins that name the public port (docs/tunnel-protocol.md). */

const v4 = (address: string, port: number) => ({ address, port, family: 4 as const });
const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));

const GOLDEN: { name: string; message: ControlMessage; hex: string }[] = [
  {
    name: 'publish of a 100-port UDP range',
    message: { type: 'publish', serviceId: 7, name: 'rtp', transport: 'udp', remote: v4('0.0.0.0', 50000), proxyProtocol: 'off', ports: 100 },
    hex: '00000013 10 0007 02 01 04 c350 00000000 03 727470 01 0064',
  },
  {
    name: 'publish by TLS name',
    message: { type: 'publish', serviceId: 1, name: 'site', transport: 'tcp', remote: v4('0.0.0.0', 0), proxyProtocol: 'v1', serverName: 'app.example.org' },
    hex: '00000022 10 0001 01 02 04 0000 00000000 04 73697465 02 0f 6170702e6578616d706c652e6f7267',
  },
  {
    name: 'publish by a wildcard QUIC name',
    message: { type: 'publish', serviceId: 2, name: 'h3', transport: 'udp', remote: v4('0.0.0.0', 0), proxyProtocol: 'off', serverName: '*.b.org' },
    hex: '00000018 10 0002 02 01 04 0000 00000000 02 6833 02 07 2a2e622e6f7267',
  },
  {
    name: 'datagram whose origin names the public port',
    message: { type: 'datagram', tag: 1, origin: { serviceId: 7, client: v4('198.51.100.7', 40000), port: 50042 }, payload: Buffer.from('x') },
    hex: '00000012 30 00000001 03 0007 04 9c40 c6336407 c37a 78',
  },
  {
    name: 'publish-error name-in-use',
    message: { type: 'publish-error', serviceId: 1, code: 'name-in-use', message: '' },
    hex: '00000006 12 0001 12 0000',
  },
];

for (const g of GOLDEN) {
  test(`golden: ${g.name} encodes to its documented bytes and decodes back`, () => {
    const bytes = hexBytes(g.hex);
    assert.equal(encodeControlMessage(g.message).toString('hex'), bytes.toString('hex'));
    const r = decodeControlFrame(bytes);
    assert.equal(r.kind, 'ok');
    if (r.kind === 'ok') assert.deepEqual(r.message, g.message);
  });
}

test('a single-port PUBLISH and an origin without a port keep their first layout byte for byte', () => {
  const one = encodeControlMessage({ type: 'publish', serviceId: 7, name: 'ssh', transport: 'tcp', remote: v4('0.0.0.0', 20002), proxyProtocol: 'v2' });
  assert.equal(one.toString('hex'), hexBytes('00000010 10 0007 01 03 04 4e22 00000000 03 737368').toString('hex'));
  const d = encodeControlMessage({ type: 'datagram', tag: 1, origin: { serviceId: 7, client: v4('198.51.100.7', 40000) }, payload: Buffer.from('x') });
  assert.equal(d.toString('hex'), hexBytes('00000010 30 00000001 01 0007 04 9c40 c6336407 78').toString('hex'));
});

test('malformed PUBLISH extensions and origin flags are refused', () => {
  const bad = (hex: string) => assertTunnelError(() => decodeControlFrame(hexBytes(hex)), 'malformed');
  bad('00000011 10 0007 02 01 04 c350 00000000 03 727470 00'); // extension flags 0
  bad('00000013 10 0007 02 01 04 c350 00000000 03 727470 03 0064'); // both bits
  bad('00000013 10 0007 02 01 04 c350 00000000 03 727470 01 0001'); // a range of one port
  bad('00000013 10 0007 02 01 04 c350 00000000 03 727470 01 2711'); // 10001 ports
  bad('00000014 10 0007 02 01 04 c350 00000000 03 727470 01 0064 00'); // trailing byte
  bad('00000014 10 0001 01 02 04 0000 00000000 04 73697465 02 03 415050'); // upper case name
  bad('00000010 30 00000001 02 0007 04 9c40 c6336407 78'); // port flag without origin
  bad('00000010 30 00000001 07 0007 04 9c40 c6336407 78'); // undefined flag bit
});

test('encoding refuses a range with a name, out-of-bounds ranges, bad names and a port in a peer flow origin', () => {
  const base = { type: 'publish' as const, serviceId: 1, name: 's', transport: 'udp' as const, remote: v4('0.0.0.0', 1000), proxyProtocol: 'off' as const };
  assertTunnelError(() => encodeControlMessage({ ...base, ports: 2, serverName: 'a.org' }), 'bad-value');
  assertTunnelError(() => encodeControlMessage({ ...base, ports: 1 }), 'bad-value');
  assertTunnelError(() => encodeControlMessage({ ...base, ports: 10_001 }), 'bad-value');
  assertTunnelError(() => encodeControlMessage({ ...base, serverName: 'App.org' }), 'bad-value');
  assertTunnelError(() => encodeControlMessage({ ...base, serverName: `${'a'.repeat(64)}.org` }), 'bad-value');
  assertTunnelError(() => encodeControlMessage({ type: 'peer-flow', tag: 5, origin: { serviceId: 2, client: v4('192.0.2.7', 1), port: 3 }, peer: 'p' }), 'bad-value');
});

test('golden: a sealed datagram whose origin names the public port (header flags 3, independent AEAD construction)', () => {
  const origin = { serviceId: 3, client: v4('198.51.100.7', 40000), port: 50001 };
  const sealer = new DatagramSealer({ key: KEY, direction: 'gateway-to-agent', peerKeyId: 0x0a0b0c0d });
  const d = sealer.sealData(7, Buffer.from('ping'), encodeOriginBlock(origin));
  const header = hexBytes('0c 03 0a0b0c0d 00000007 000000000000');
  const plaintext = hexBytes('0003 04 9c40 c6336407 c351 70696e67');
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(2, 0);
  const c = createCipheriv('chacha20-poly1305', KEY, nonce, { authTagLength: 16 });
  c.setAAD(header, { plaintextLength: plaintext.length });
  assert.equal(d.toString('hex'), Buffer.concat([header, c.update(plaintext), c.final(), c.getAuthTag()]).toString('hex'));
  assert.deepEqual(readUnverifiedHeader(d), { kind: 'data', flags: 3, keyId: 0x0a0b0c0d, tag: 7, sequence: 0 });
  const opener = new DatagramOpener({ key: KEY, direction: 'gateway-to-agent', keyId: 0x0a0b0c0d });
  assert.deepEqual(opener.open(d), { ok: true, datagram: { kind: 'data', sequence: 0, newest: true, tag: 7, origin, payload: Buffer.from('ping') } });
});

test('a range origin leaves 2 bytes less for the payload: the sealed datagram still fits one UDP payload', () => {
  const sealer = new DatagramSealer({ key: KEY, direction: 'gateway-to-agent', peerKeyId: 1 });
  const origin6 = encodeOriginBlock({ serviceId: 1, client: { address: '2001:db8::1', port: 1, family: 6 }, port: 2 });
  assert.equal(origin6.length, 23);
  assert.equal(sealer.sealData(1, Buffer.alloc(MAX_DATAGRAM_PAYLOAD_BYTES - 2), origin6).length, MAX_UDP_PAYLOAD_BYTES);
  assertTunnelError(() => sealer.sealData(1, Buffer.alloc(MAX_DATAGRAM_PAYLOAD_BYTES - 1), origin6), 'bad-value');
});

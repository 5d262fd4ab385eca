import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../../src/core/errors.js';
import {
  decodeProxyDatagram,
  decodeProxyHeader,
  encodeProxyHeader,
  encodeProxyV2,
  encodeProxyV2Into,
  proxyV2Length,
  PP2_TYPE,
  type ProxyHeaderV2,
  type ProxyV2EncodeInput,
} from '../../../src/protocol/proxy-protocol/index.js';
import { assertRejects, hex, loadVectors } from './helpers.js';

const SIG = '0d0a0d0a000d0a515549540a';
const vectors = new Map(loadVectors('v2').map((v) => [v.id, v]));
/** The header bytes of a shared vector (without its payload). */
function vectorHeader(id: string): Buffer {
  const v = vectors.get(id)!;
  return hex(v.hex).subarray(0, v.parsed!.headerLength);
}
function decodeV2(buf: Buffer, options = {}): { header: ProxyHeaderV2; length: number } {
  const r = decodeProxyHeader(buf, { version: 2, ...options });
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok' || r.header.version !== 2) throw new Error('unreachable');
  return { header: r.header, length: r.length };
}
const ascii = (s: string) => Buffer.from(s, 'latin1');
const ep = (address: string, port: number) => ({ address, port });

test('golden: the DESIGN.md TCP4 example (127.0.0.1:47111 -> 127.0.0.1:443)', () => {
  const b = encodeProxyV2({ addresses: { source: ep('127.0.0.1', 47111), destination: ep('127.0.0.1', 443) } });
  assert.equal(b.toString('hex'), `${SIG}2111000c7f0000017f000001b80701bb`);
});

test('golden: encoders reproduce the shared vectors byte for byte', () => {
  const loop4 = { source: ep('127.0.0.1', 65533), destination: ep('127.0.0.1', 65533) };
  const loop6 = { source: ep('::1', 65533), destination: ep('::1', 65533) };
  const cases: [string, ProxyV2EncodeInput][] = [
    ['v2-proxy-tcp4', { addresses: loop4 }],
    ['v2-proxy-udp4', { addresses: loop4, transport: 'DGRAM' }],
    ['v2-proxy-tcp6', { addresses: loop6 }],
    ['v2-proxy-udp6', { addresses: loop6, transport: 'DGRAM' }],
    ['v2-local-unspec', { command: 'LOCAL' }],
    ['v2-proxy-unix-stream', { unix: { source: 'socket', destination: 'socket' } }],
    ['v2-proxy-unix-dgram', { unix: { source: 'socket', destination: 'socket' }, transport: 'DGRAM' }],
    ['v2-udp4-datagram', { addresses: { source: ep('203.0.113.7', 5353), destination: ep('127.0.0.1', 51820) }, transport: 'DGRAM' }],
    ['v2-tcp4-authority', {
      addresses: { source: ep('127.0.0.1', 42), destination: ep('127.0.0.1', 1337) },
      tlvs: [{ type: PP2_TYPE.AUTHORITY, value: ascii('12345') }],
    }],
    ['v2-all-tlv-types-crc32c', {
      addresses: { source: ep('192.0.2.1', 40000), destination: ep('198.51.100.2', 8443) },
      crc32c: true,
      tlvs: [
        { type: PP2_TYPE.UNIQUE_ID, value: ascii('conn-0001') },
        { type: PP2_TYPE.AUTHORITY, value: ascii('example.org') },
        { type: PP2_TYPE.NETNS, value: ascii('blue') },
        { type: PP2_TYPE.ALPN, value: ascii('h2') },
        { type: PP2_TYPE.SSL, value: hex('0100000000 210007544c5376312e33 230016544c535f4145535f3132385f47434d5f534841323536') },
        { type: PP2_TYPE.NOOP, value: Buffer.alloc(2) },
      ],
    }],
    ['v2-aws-vpce-crc32c', {
      addresses: { source: ep('172.31.7.113', 51442), destination: ep('172.31.10.31', 80) },
      crc32c: true,
      tlvs: [{ type: 0xea, value: Buffer.concat([Buffer.of(1), ascii('vpce-08d2bf15fac5001c9')]) }, { type: PP2_TYPE.NOOP, value: Buffer.alloc(36) }],
    }],
  ];
  for (const [id, input] of cases) {
    assert.equal(encodeProxyV2(input).toString('hex'), vectorHeader(id).toString('hex'), id);
    assert.equal(proxyV2Length(input), vectorHeader(id).length, id);
  }
});

test('encodeProxyV2Into writes the same bytes at an offset and allocates no output', () => {
  const input: ProxyV2EncodeInput = { addresses: { source: ep('2001:db8::7', 1), destination: ep('2001:db8::1', 2) }, crc32c: true };
  const expected = encodeProxyV2(input);
  const target = Buffer.alloc(expected.length + 10, 0xaa);
  assert.equal(encodeProxyV2Into(input, target, 5), expected.length);
  assert.deepEqual(target.subarray(5, 5 + expected.length), expected);
  assert.equal(target[4], 0xaa);
  assert.equal(target[5 + expected.length], 0xaa);
  assert.throws(() => encodeProxyV2Into(input, target, 11), RangeError);
});

test('mixed families become AF_INET6 with the IPv4 side IPv4-mapped; decoding gives it back as IPv4', () => {
  const b = encodeProxyV2({ addresses: { source: ep('203.0.113.7', 5000), destination: ep('2001:db8::1', 443) } });
  assert.equal(b.subarray(13, 14).toString('hex'), '21');
  assert.equal(b.subarray(16, 32).toString('hex'), '00000000000000000000ffffcb007107');
  const { header } = decodeV2(b);
  assert.equal(header.family, 'AF_INET6');
  assert.deepEqual(header.addresses, {
    source: { address: '203.0.113.7', port: 5000, family: 4 },
    destination: { address: '2001:db8::1', port: 443, family: 6 },
  });
  // Re-encoding the decoded header keeps AF_INET6 and the exact bytes.
  assert.deepEqual(encodeProxyHeader(header), b);
});

test('family can be forced to AF_INET6 for an IPv4 pair; AF_INET refuses IPv6', () => {
  const b = encodeProxyV2({ family: 'AF_INET6', addresses: { source: ep('10.0.0.1', 1), destination: ep('10.0.0.2', 2) } });
  assert.equal(b.length, 16 + 36);
  assert.throws(() => encodeProxyV2({ family: 'AF_INET', addresses: { source: ep('::2', 1), destination: ep('10.0.0.2', 2) } }), RangeError);
});

test('LOCAL: address block discarded on decode, zero-filled on encode, len always skipped', () => {
  const local = vectorHeader('v2-local-tcp4'); // LOCAL 0x11 with 127.0.0.1 addresses
  const { header, length } = decodeV2(Buffer.concat([local, ascii('payload')]));
  assert.equal(length, 28);
  assert.equal(header.addresses, undefined);
  const again = encodeProxyHeader(header);
  assert.equal(again.toString('hex'), `${SIG}2011000c${'00'.repeat(12)}`);
  // LOCAL with TLVs: len covers them, and they are read like PROXY's.
  const withTlv = encodeProxyV2({ command: 'LOCAL', tlvs: [{ type: PP2_TYPE.NOOP, value: Buffer.alloc(3) }] });
  assert.equal(withTlv.toString('hex'), `${SIG}20000006${'040003000000'}`);
  assert.equal(decodeV2(withTlv).header.tlvs.length, 1);
});

test('LOCAL with len shorter than its family block is refused (documented choice)', () => {
  assertRejects(() => decodeProxyHeader(hex(`${SIG}20110005aabbccddee`)), 'bad-length');
});

test('forwarding a decoded header recomputes its CRC32C', () => {
  // LOCAL with a non-zero block and a CRC: the block is zeroed on re-encode, so the CRC must change.
  const original = encodeProxyV2({ command: 'LOCAL', family: 'AF_INET', crc32c: true });
  original.set([1, 2, 3, 4], 16);
  const fixed = encodeProxyV2({ command: 'LOCAL', family: 'AF_INET', tlvs: [{ type: 3, value: Buffer.alloc(4) }] });
  original.set(fixed.subarray(31, 35), 31);
  assertRejects(() => decodeProxyHeader(original), 'crc-mismatch');
  const { header } = decodeV2(fixed);
  const forwarded = encodeProxyHeader(header);
  assert.deepEqual(forwarded, fixed);
});

test('encoder refuses what it cannot encode', () => {
  const addresses = { source: ep('10.0.0.1', 1), destination: ep('10.0.0.2', 2) };
  const rangeErrors: ProxyV2EncodeInput[] = [
    { family: 'AF_INET' },
    { family: 'AF_UNIX', transport: 'STREAM' },
    { family: 'AF_INET', transport: 'UNSPEC', addresses },
    { family: 'AF_UNSPEC', addresses },
    { addresses, unix: { source: 'a', destination: 'b' } },
    { unix: { source: 'x'.repeat(109), destination: 'b' } },
    { unix: { source: 'a\0b', destination: 'b' } },
    { addresses, tlvs: [{ type: 3, value: Buffer.alloc(4) }, { type: 3, value: Buffer.alloc(4) }] },
    { addresses, tlvs: [{ type: 3, value: Buffer.alloc(3) }] },
    { addresses, tlvs: [{ type: 256, value: Buffer.alloc(0) }] },
    { addresses, tlvs: [{ type: 0xe0, value: Buffer.alloc(65_536) }] },
    { addresses, tlvs: [{ type: 0xe0, value: Buffer.alloc(65_535 - 12 - 3 + 1) }] },
    { command: 'BOGUS' as 'PROXY', addresses },
  ];
  for (const input of rangeErrors) assert.throws(() => encodeProxyV2(input), RangeError, JSON.stringify(input).slice(0, 80));
  assert.throws(
    () => encodeProxyV2({ addresses: { source: ep('not-an-ip', 1), destination: ep('10.0.0.2', 2) } }),
    (err: unknown) => isSluiceError(err, 'SLUICE_ERR_ADDRESS_INVALID'),
  );
  // The largest body that fits is accepted.
  const max = encodeProxyV2({ addresses, tlvs: [{ type: 0xe0, value: Buffer.alloc(65_535 - 12 - 3) }] });
  assert.equal(max.length, 16 + 65_535);
  assert.equal(decodeV2(max, { maxV2HeaderBytes: 16 + 65_535 }).length, max.length);
});

test('PROXY without addresses encodes AF_UNSPEC (prefer LOCAL); transport is forced to UNSPEC', () => {
  assert.equal(encodeProxyV2({}).toString('hex'), `${SIG}21000000`);
  assert.equal(encodeProxyV2({ command: 'LOCAL', transport: 'DGRAM' }).toString('hex'), `${SIG}20000000`);
});

test('v2 fields are refused as soon as their byte arrives', () => {
  assert.equal(assertRejects(() => decodeProxyHeader(hex('0d0a0d0a000d0a5155495478')), 'not-proxy').offset, 11);
  assert.equal(assertRejects(() => decodeProxyHeader(hex(`${SIG}12`)), 'bad-version').offset, 12);
  assert.equal(assertRejects(() => decodeProxyHeader(hex(`${SIG}22`)), 'bad-command').offset, 12);
  for (const fam of ['01', '02', '10', '20', '30', '13', '33', '40', 'ff']) {
    assert.equal(assertRejects(() => decodeProxyHeader(hex(`${SIG}21${fam}`)), 'bad-family').offset, 13, fam);
  }
  assert.equal(assertRejects(() => decodeProxyHeader(hex(`${SIG}2121000c`)), 'bad-length').offset, 14);
  assert.equal(assertRejects(() => decodeProxyHeader(hex(`${SIG}2111ffff`)), 'too-large').offset, 14);
  assert.deepEqual(decodeProxyHeader(hex(`${SIG}2111ffff`), { maxV2HeaderBytes: 65_551 }), { kind: 'need-more' });
});

test('maxV2HeaderBytes counts the 16 fixed bytes and must be an integer >= 16', () => {
  const b = vectorHeader('v2-proxy-tcp4'); // 28 bytes
  assert.equal(decodeV2(b, { maxV2HeaderBytes: 28 }).length, 28);
  assertRejects(() => decodeProxyHeader(b, { maxV2HeaderBytes: 27 }), 'too-large');
  for (const bad of [15, 100.5, Number.NaN]) assert.throws(() => decodeProxyHeader(b, { maxV2HeaderBytes: bad }), RangeError);
});

test('decodeProxyDatagram: header and payload in one datagram, never need-more', () => {
  const dgram = hex(vectors.get('v2-udp4-datagram')!.hex);
  const { header, length } = decodeProxyDatagram(dgram);
  assert.equal(header.transport, 'DGRAM');
  assert.deepEqual(header.addresses?.source, { address: '203.0.113.7', port: 5353, family: 4 });
  assert.equal(dgram.subarray(length).toString(), 'hello');
  assertRejects(() => decodeProxyDatagram(dgram.subarray(0, 27)), 'truncated');
  assertRejects(() => decodeProxyDatagram(Buffer.alloc(0)), 'truncated');
  assertRejects(() => decodeProxyDatagram(ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')), 'version-not-allowed');
  assertRejects(() => decodeProxyDatagram(ascii('hello')), 'not-proxy');
  // A datagram may be exactly the header (an empty payload).
  assert.equal(decodeProxyDatagram(dgram.subarray(0, 28)).length, 28);
});

test('AF_UNIX paths: up to the first NUL, or all 108 bytes', () => {
  const long = 'p'.repeat(108);
  const b = encodeProxyV2({ unix: { source: long, destination: '/run/ü.sock' } });
  assert.deepEqual(decodeV2(b).header.unix, { source: long, destination: '/run/ü.sock' });
});

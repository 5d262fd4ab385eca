import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  crc32c,
  decodeProxyHeader,
  encodeProxyV2,
  findTlv,
  PP2_TYPE,
  tlvText,
  type ProxyHeaderV2,
  type TlvInput,
} from '../../../src/protocol/proxy-protocol/index.js';
import { crc32cWithZeroedField } from '../../../src/protocol/proxy-protocol/crc32c.js';
import { assertRejects } from './helpers.js';

const addresses = { source: { address: '192.0.2.1', port: 1 }, destination: { address: '192.0.2.2', port: 2 } };
const withTlvs = (tlvs: TlvInput[], crc32cTlv = false) => encodeProxyV2({ addresses, tlvs, crc32c: crc32cTlv });
function decode(buf: Buffer, validateTlvs = true): ProxyHeaderV2 {
  const r = decodeProxyHeader(buf, { validateTlvs });
  if (r.kind !== 'ok' || r.header.version !== 2) throw new Error(`expected a v2 header, got ${r.kind}`);
  return r.header;
}

test('CRC-32C check values (RFC 3720 B.4, and "123456789")', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  assert.equal(crc32c(Buffer.alloc(0)), 0);
});

test('crc32cWithZeroedField equals the CRC of a copy with the field zeroed', () => {
  const data = Buffer.from('0123456789abcdefghij');
  const copy = Buffer.from(data);
  copy.fill(0, 7, 11);
  assert.equal(crc32cWithZeroedField(data, 0, data.length, 7), crc32c(copy));
  assert.equal(crc32cWithZeroedField(data, 2, 15, 7), crc32c(copy, 2, 15));
});

test('a CRC32C TLV is verified with and without TLV validation', () => {
  const good = withTlvs([{ type: PP2_TYPE.AUTHORITY, value: Buffer.from('a.example') }], true);
  assert.equal(decode(good).tlvs[0]!.type, PP2_TYPE.CRC32C);
  for (const at of [16, 27, 31, 34, good.length - 1]) {
    const bad = Buffer.from(good);
    bad[at]! ^= 0x01;
    assertRejects(() => decodeProxyHeader(bad), 'crc-mismatch');
    assertRejects(() => decodeProxyHeader(bad, { validateTlvs: false }), 'crc-mismatch');
  }
});

test('TLV rules enforced with validation on, tolerated with it off', () => {
  const cases: [string, TlvInput[]][] = [
    ['CRC32C of 3 bytes', [{ type: PP2_TYPE.CRC32C, value: Buffer.alloc(3) }]],
    ['UNIQUE_ID of 129 bytes', [{ type: PP2_TYPE.UNIQUE_ID, value: Buffer.alloc(129, 0x41) }]],
    ['AUTHORITY of 256 bytes', [{ type: PP2_TYPE.AUTHORITY, value: Buffer.alloc(256, 0x61) }]],
    ['SSL of 4 bytes', [{ type: PP2_TYPE.SSL, value: Buffer.alloc(4) }]],
    ['SSL with a truncated sub-TLV', [{ type: PP2_TYPE.SSL, value: Buffer.from('01000000002100054142', 'hex') }]],
  ];
  for (const [name, tlvs] of cases) {
    // Built by hand: the encoder refuses a 3-byte CRC32C TLV.
    const body = Buffer.concat(tlvs.map((t) => Buffer.concat([Buffer.of(t.type, t.value.length >> 8, t.value.length & 0xff), t.value])));
    const buf = withTlvs([]);
    const whole = Buffer.concat([buf, body]);
    whole.writeUInt16BE(12 + body.length, 14);
    assertRejects(() => decodeProxyHeader(whole), 'tlv-malformed');
    const header = decode(whole, false);
    assert.equal(header.tlvs.length, 1, name);
    assert.equal(header.tlvs[0]!.ssl, undefined, name);
  }
  // The limits themselves are accepted.
  const atLimits = decode(withTlvs([
    { type: PP2_TYPE.UNIQUE_ID, value: Buffer.alloc(128, 0x41) },
    { type: PP2_TYPE.AUTHORITY, value: Buffer.alloc(255, 0x61) },
    { type: PP2_TYPE.SSL, value: Buffer.alloc(5) },
  ]));
  assert.deepEqual(atLimits.tlvs[2]!.ssl, { client: 0, verify: 0, subTlvs: [] });
});

test('two CRC32C TLVs are refused when validating', () => {
  const one = withTlvs([], true);
  const body = Buffer.concat([one.subarray(28), one.subarray(28)]);
  const two = Buffer.concat([one.subarray(0, 28), body]);
  two.writeUInt16BE(12 + body.length, 14);
  assertRejects(() => decodeProxyHeader(two), 'tlv-malformed');
});

test('with validation off, TLVs are read up to the first one that does not fit', () => {
  const buf = withTlvs([{ type: PP2_TYPE.ALPN, value: Buffer.from('h2') }, { type: 0xe1, value: Buffer.from('xyz') }]);
  buf.writeUInt16BE(buf.readUInt16BE(14) - 1, 14); // the last TLV now runs past len by one byte
  assertRejects(() => decodeProxyHeader(buf), 'tlv-malformed');
  const header = decode(buf, false);
  assert.deepEqual(header.tlvs.map((t) => t.type), [PP2_TYPE.ALPN]);
});

test('SSL sub-TLVs and client bits', () => {
  const value = Buffer.from('07000000012200046a6f686e', 'hex'); // SSL|CERT_CONN|CERT_SESS, verify=1, CN "john"
  const h = decode(withTlvs([{ type: PP2_TYPE.SSL, value }]));
  const ssl = findTlv(h, PP2_TYPE.SSL)!.ssl!;
  assert.equal(ssl.client, 7);
  assert.equal(ssl.verify, 1);
  assert.equal(tlvText(ssl.subTlvs[0]), 'john');
});

test('tlvText refuses NUL bytes and invalid UTF-8; findTlv finds the first of a type', () => {
  const h = decode(withTlvs([
    { type: PP2_TYPE.AUTHORITY, value: Buffer.from('例え.jp') },
    { type: PP2_TYPE.UNIQUE_ID, value: Buffer.from('public\0x') },
    { type: PP2_TYPE.NETNS, value: Buffer.from([0xff, 0xfe]) },
    { type: PP2_TYPE.AUTHORITY, value: Buffer.from('second') },
  ]));
  assert.equal(tlvText(findTlv(h, PP2_TYPE.AUTHORITY)), '例え.jp');
  assert.equal(tlvText(findTlv(h, PP2_TYPE.UNIQUE_ID)), undefined);
  assert.deepEqual(findTlv(h, PP2_TYPE.UNIQUE_ID)!.value, Buffer.from('public\0x'));
  assert.equal(tlvText(findTlv(h, PP2_TYPE.NETNS)), undefined);
  assert.equal(tlvText(findTlv(h, PP2_TYPE.ALPN)), undefined);
});

test('TLV values are views into the input, not copies (documented)', () => {
  const buf = withTlvs([{ type: PP2_TYPE.AUTHORITY, value: Buffer.from('abc') }]);
  const t = decode(buf).tlvs[0]!;
  assert.equal(t.value.buffer, buf.buffer);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isInitialPacket, isRetryPacket, isVersionNegotiation, longHeaderIds } from '../../../src/protocol/quic/packet-ids.js';
import { RFC_DCID, V1_CLIENT, V2_CLIENT } from './fixtures/rfc-vectors.js';

/* The version-independent long header (RFC 8999 section 5.1), on the RFCs' own packets. */

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('packet ids: RFC 9001 A.2 client Initial, RFC 9369 A.2 v2 Initial, RFC 9001 A.4 Retry', () => {
  const v1 = longHeaderIds(hex(V1_CLIENT.packet));
  assert.deepEqual(v1 && [v1.version, v1.type, v1.dcid.toString('hex'), v1.scid.toString('hex')], [1, 0, RFC_DCID, '']);
  assert.ok(v1 && isInitialPacket(v1) && !isRetryPacket(v1) && !isVersionNegotiation(v1));
  const v2 = longHeaderIds(hex(V2_CLIENT.packet)); // protected: byte 0 is 0xd7, its type bits unprotected
  assert.deepEqual(v2 && [v2.version, v2.type, v2.dcid.toString('hex')], [0x6b3343cf, 1, RFC_DCID]);
  assert.ok(v2 && isInitialPacket(v2));
  const retry = longHeaderIds(hex('ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba'));
  assert.deepEqual(retry && [retry.type, retry.dcid.length, retry.scid.toString('hex')], [3, 0, 'f067a5502a4262b5']);
  assert.ok(retry && isRetryPacket(retry) && !isInitialPacket(retry));
});

test('packet ids: Version Negotiation and unknown versions keep their IDs but are neither Initial nor Retry; short headers and truncated headers give nothing', () => {
  // RFC 9000 section 17.2.1: version 0, then the IDs, then the supported versions.
  const vn = longHeaderIds(hex('80 00000000 04 01020304 08 1112131415161718 00000001 6b3343cf'));
  assert.ok(vn && isVersionNegotiation(vn) && !isInitialPacket(vn) && !isRetryPacket(vn));
  assert.deepEqual(vn && [vn.dcid.toString('hex'), vn.scid.toString('hex')], ['01020304', '1112131415161718']);
  const greased = longHeaderIds(hex('c0 1a2a3a4a 01 aa 01 bb 00'));
  assert.ok(greased && !isInitialPacket(greased) && !isRetryPacket(greased));
  assert.equal(longHeaderIds(hex('41 0102030405060708')), undefined, 'short header');
  assert.equal(longHeaderIds(hex('c0 00000001 08 0102')), undefined, 'DCID past the end');
  assert.equal(longHeaderIds(hex('c0 00000001 01 aa 05 bb')), undefined, 'SCID past the end');
  assert.equal(longHeaderIds(Buffer.alloc(0)), undefined);
  // Any bytes: never throws.
  for (let n = 0; n < 2000; n++) {
    const b = Buffer.alloc(n % 40);
    for (let i = 0; i < b.length; i++) b[i] = (n * 31 + i * 17) & 0xff;
    if (b.length > 0) b[0]! |= 0x80;
    longHeaderIds(b);
  }
});

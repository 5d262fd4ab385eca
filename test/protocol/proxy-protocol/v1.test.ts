import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../../src/core/errors.js';
import { decodeProxyHeader, encodeProxyV1, proxyV1Line } from '../../../src/protocol/proxy-protocol/index.js';
import { assertRejects } from './helpers.js';

const ascii = (s: string) => Buffer.from(s, 'latin1');

test('a client that sent no header is refused at its first byte', () => {
  for (const first of ['G', 'GET / HTTP/1.1\r\n', '\x16\x03\x01\x02\x00', 'SSH-2.0-OpenSSH_9.6\r\n', '\x00']) {
    const err = assertRejects(() => decodeProxyHeader(ascii(first)), 'not-proxy');
    assert.equal(err.offset, 0);
  }
  // HTTP/2 preface shares "PR" with "PROXY": refused at the first differing byte.
  assert.equal(assertRejects(() => decodeProxyHeader(ascii('PRI * HTTP/2.0\r\n')), 'not-proxy').offset, 2);
  assert.deepEqual(decodeProxyHeader(ascii('PROX')), { kind: 'need-more' });
});

test('v1 lines are refused at the first byte that cannot belong to a valid line', () => {
  const cases: [string, number][] = [
    ['PROXY TCP5', 9],
    ['PROXY TCP4x', 10],
    ['PROXY UNKNOWNX', 13],
    ['PROXY UNKNOWM', 12],
    ['PROXY TCQ', 8],
    ['PROXY TCP4 1.2.3.4x', 18],
    ['PROXY TCP4 1.2.3.4  ', 19],
    ['PROXY TCP4  ', 11],
    ['PROXY TCP6 fe80::1%', 18],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ', 30],
    ['PROXY TCP4 1.2.3.4\n', 18],
    ['PROXY UNKNOWN \n', 14],
    ['PROXY UNKNOWN \rX', 14],
  ];
  for (const [line, offset] of cases) {
    const err = assertRejects(() => decodeProxyHeader(ascii(line)), 'bad-syntax');
    assert.equal(err.offset, offset, line);
  }
});

test('v1 TCP4 lines are refused at 56 bytes without CRLF, not at 107', () => {
  const long = ascii(`PROXY TCP4 ${'1'.repeat(50)}`);
  assert.deepEqual(decodeProxyHeader(long.subarray(0, 55)), { kind: 'need-more' });
  assertRejects(() => decodeProxyHeader(long.subarray(0, 56)), 'too-long');
  // A CR as the 56th byte would put the LF at 57.
  assertRejects(() => decodeProxyHeader(ascii(`PROXY TCP4 ${'1'.repeat(44)}\r`)), 'too-long');
});

test('v1 UNKNOWN with 107 bytes and no CRLF is too long; the CRLF may end at byte 107', () => {
  const fill = (n: number) => `PROXY UNKNOWN ${'x'.repeat(n)}`;
  assert.deepEqual(decodeProxyHeader(ascii(fill(92))), { kind: 'need-more' }); // 106 bytes
  assertRejects(() => decodeProxyHeader(ascii(fill(93))), 'too-long'); // 107 bytes, no CRLF
  const r = decodeProxyHeader(ascii(`${fill(91)}\r\n`));
  assert.equal(r.kind === 'ok' && r.length, 107);
});

test('v1 canonicalises addresses; the wire protocol stays visible', () => {
  const r = decodeProxyHeader(ascii('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::FFFF:192.0.2.1 0 65535\r\n'));
  assert.deepEqual(r, {
    kind: 'ok',
    length: 58,
    header: {
      version: 1,
      protocol: 'TCP6',
      addresses: {
        source: { address: '2001:db8::1', port: 0, family: 6 },
        destination: { address: '192.0.2.1', port: 65535, family: 4 },
      },
    },
  });
});

test('v1 ports: plain decimal without leading zeros, 0 included', () => {
  for (const bad of ['00', '65536', '0x10', '123456', '-1']) {
    assertRejects(() => decodeProxyHeader(ascii(`PROXY TCP4 1.2.3.4 5.6.7.8 ${bad} 1\r\n`)));
  }
  const r = decodeProxyHeader(ascii('PROXY TCP4 1.2.3.4 5.6.7.8 0 1\r\n'));
  assert.equal(r.kind, 'ok');
});

test('v1 with fewer than four fields after the protocol is refused', () => {
  assertRejects(() => decodeProxyHeader(ascii('PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n')), 'bad-syntax');
  assertRejects(() => decodeProxyHeader(ascii('PROXY TCP4\r\n')), 'bad-syntax');
});

test('encodeProxyV1: the spec example, byte for byte', () => {
  const b = encodeProxyV1({
    source: { address: '192.168.0.1', port: 56324 },
    destination: { address: '192.168.0.11', port: 443 },
  });
  assert.equal(b.toString('hex'), Buffer.from('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n', 'latin1').toString('hex'));
});

test('encodeProxyV1: IPv6 in RFC 5952 text; mapped IPv4 counts as IPv4', () => {
  assert.equal(
    proxyV1Line({ source: { address: '2001:0DB8:0:0:0:0:0:1', port: 1 }, destination: { address: '[::1]', port: 2 } }),
    'PROXY TCP6 2001:db8::1 ::1 1 2\r\n',
  );
  assert.equal(
    proxyV1Line({ source: { address: '::ffff:203.0.113.7', port: 1 }, destination: { address: '10.0.0.1', port: 2 } }),
    'PROXY TCP4 203.0.113.7 10.0.0.1 1 2\r\n',
  );
});

test('encodeProxyV1: mixed families and unknown clients give "PROXY UNKNOWN"', () => {
  assert.equal(encodeProxyV1().toString('latin1'), 'PROXY UNKNOWN\r\n');
  assert.equal(
    proxyV1Line({ source: { address: '203.0.113.7', port: 1 }, destination: { address: '2001:db8::1', port: 2 } }),
    'PROXY UNKNOWN\r\n',
  );
});

test('encodeProxyV1: non-IP addresses and bad ports are SLUICE_ERR_ADDRESS_INVALID', () => {
  for (const [address, port] of [['example.com', 1], ['1.2.3.4', 65536], ['1.2.3.4', -1], ['1.2.3.4', 1.5]] as const) {
    assert.throws(
      () => encodeProxyV1({ source: { address, port }, destination: { address: '1.2.3.4', port: 1 } }),
      (err: unknown) => isSluiceError(err, 'SLUICE_ERR_ADDRESS_INVALID'),
    );
  }
});

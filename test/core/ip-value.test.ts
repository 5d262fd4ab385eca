import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { canonicalIp } from '../../src/core/address.js';
import { formatIpValue, formatIpv4, parseIpValue } from '../../src/core/ip-value.js';

test('parses IPv4 to one uint32 word', () => {
  assert.deepEqual(parseIpValue('0.0.0.0'), { family: 4, words: [0] });
  assert.deepEqual(parseIpValue('127.0.0.1'), { family: 4, words: [0x7f000001] });
  assert.deepEqual(parseIpValue('255.255.255.255'), { family: 4, words: [0xffffffff] });
});

test('parses IPv6 to four words, mapped IPv4 to IPv4', () => {
  assert.deepEqual(parseIpValue('::'), { family: 6, words: [0, 0, 0, 0] });
  assert.deepEqual(parseIpValue('::1'), { family: 6, words: [0, 0, 0, 1] });
  assert.deepEqual(parseIpValue('2001:db8::ff00:42:8329'), { family: 6, words: [0x20010db8, 0, 0xff00, 0x00428329] });
  assert.deepEqual(parseIpValue('FFFF:ffff:FFFF:ffff:ffff:ffff:ffff:ffff'), { family: 6, words: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff] });
  assert.deepEqual(parseIpValue('::ffff:127.0.0.1'), { family: 4, words: [0x7f000001] });
  assert.deepEqual(parseIpValue('0:0:0:0:0:FFFF:7F00:1'), { family: 4, words: [0x7f000001] });
  assert.deepEqual(parseIpValue('::127.0.0.1'), { family: 6, words: [0, 0, 0, 0x7f000001] });
  assert.deepEqual(parseIpValue('1:2:3:4:5:6:7::'), { family: 6, words: [0x10002, 0x30004, 0x50006, 0x70000] });
  assert.deepEqual(parseIpValue('::2:3:4:5:6:7:8'), { family: 6, words: [0x2, 0x30004, 0x50006, 0x70008] });
});

test('refuses what net.isIP refuses, including the SSRF-1 numeric spellings', () => {
  for (const bad of [
    '', ':', ':::', '1:', ':1', '1::2::3', '1:2:3:4:5:6:7:8:9', '1::2:3:4:5:6:7:8', '12345::', 'g::',
    '2130706433', '0x7f.0.0.1', '0177.0.0.1', '127.1', '127.0.0.1.', '127.000.000.001', '01.2.3.4', '256.0.0.1',
    '1.2.3', '1.2.3.4.5', ' 1.2.3.4', '[::1]', '::ffff:01.2.3.4', '::1.2.3.4:5', '1.2.3.4::',
    '1:2:3:4:5:6:7:1.2.3.4', '::ffff:1.2.3',
  ]) {
    assert.equal(parseIpValue(bad), undefined, bad);
    assert.equal(net.isIP(bad), 0, `net.isIP agrees on ${bad}`);
  }
  // canonicalIp drops zones first; the parser itself takes canonical text only.
  assert.equal(parseIpValue('fe80::1%lo'), undefined);
});

test('formatIpv4 and formatIpValue write canonical text', () => {
  assert.equal(formatIpv4(0xc0000201), '192.0.2.1');
  assert.equal(formatIpValue(parseIpValue('2001:0db8:0000:0000:0001:0000:0000:0001')!), '2001:db8::1:0:0:1');
});

test('property: IPv4 and IPv6 text agree with net.isIP and canonicalIp', () => {
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended()), (text) => {
      const canon = canonicalIp(text);
      const ours = parseIpValue(text);
      if (net.isIP(text) === 0 || text.includes('%')) return assert.equal(ours, undefined);
      assert.ok(ours, text);
      assert.equal(ours.family, canon!.family);
      assert.equal(formatIpValue(ours), canon!.address);
      assert.deepEqual(parseIpValue(canon!.address), ours);
    }),
    { numRuns: 5000 },
  );
});

test('property: random strings over the address alphabet are accepted exactly when net.isIP accepts them', () => {
  const chars = '0123456789abcdefABCDEF:.:.:'.split('');
  const alphabet = fc.constantFrom(...chars);
  const mutated = fc
    .tuple(fc.oneof(fc.ipV6(), fc.ipV4()), fc.nat(), fc.constantFrom(...chars), fc.constantFrom('delete', 'insert', 'replace'))
    .map(([ip, at, c, op]) => {
      const i = at % (ip.length + 1);
      if (op === 'delete') return ip.slice(0, i) + ip.slice(i + 1);
      if (op === 'insert') return ip.slice(0, i) + c + ip.slice(i);
      return ip.slice(0, i) + c + ip.slice(i + 1);
    });
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: alphabet, maxLength: 46 }), mutated), (text) => {
      assert.equal(parseIpValue(text) !== undefined, net.isIP(text) !== 0, JSON.stringify(text)); // no % in the alphabet
    }),
    { numRuns: 20000 },
  );
});

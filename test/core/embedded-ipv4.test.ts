import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalIp } from '../../src/core/address.js';
import { embeddedIpv4 } from '../../src/core/embedded-ipv4.js';
import { formatIpv4, parseIpValue } from '../../src/core/ip-value.js';
import { ipv6Encodings } from '../admission/acl/encodings.js';

function widen(text: string): string[] {
  const c = canonicalIp(text);
  assert.ok(c, text);
  return embeddedIpv4(parseIpValue(c.address)!).map((e) => `${e.form} ${formatIpv4(e.v4)}`);
}

test('widening table: every IPv4-embedding form maps to its IPv4 address', () => {
  const table: Array<[string, string[]]> = [
    // The five loopback spellings net.BlockList let through under a 127.0.0.0/8 rule (threats §3.1, §6).
    ['::127.0.0.1', ['compatible 127.0.0.1']],
    ['64:ff9b::7f00:1', ['nat64 127.0.0.1']],
    ['2002:7f00:1::', ['6to4 127.0.0.1']],
    // Compatible
    ['::7f00:1', ['compatible 127.0.0.1']],
    ['::a9fe:a9fe', ['compatible 169.254.169.254']],
    ['::2', ['compatible 0.0.0.2']],
    // Translated (RFC 2765 SIIT)
    ['::ffff:0:10.0.0.1', ['translated 10.0.0.1']],
    // NAT64 well-known prefix
    ['64:ff9b::192.168.1.1', ['nat64 192.168.1.1']],
    ['64:FF9B::A9FE:A9FE', ['nat64 169.254.169.254']],
    // NAT64 local-use (RFC 8215), each RFC 6052 placement; /96 is always read
    ['64:ff9b:1::7f00:1', ['nat64-local 127.0.0.1', 'nat64-local 0.0.0.0', 'nat64-local 0.0.0.0', 'nat64-local 0.0.0.127']],
    ['64:ff9b:1:7f00:0:100::', ['nat64-local 0.0.0.0', 'nat64-local 127.0.0.1', 'nat64-local 0.0.1.0', 'nat64-local 0.1.0.0']], // /48
    ['64:ff9b:1:7f:0:1::', ['nat64-local 0.0.0.0', 'nat64-local 0.127.0.0', 'nat64-local 127.0.0.1', 'nat64-local 0.0.1.0']], // /56
    ['64:ff9b:1:0:7f:0:100:0', ['nat64-local 1.0.0.0', 'nat64-local 0.0.127.0', 'nat64-local 0.127.0.0', 'nat64-local 127.0.0.1']], // /64
    ['64:ff9b:1:0:ff00::a00:1', ['nat64-local 10.0.0.1']], // u octet set: only /96 is valid
    // 6to4: the IPv4 is bytes 2-5, whatever the subnet and interface id
    ['2002:c000:204::', ['6to4 192.0.2.4']],
    ['2002:a00:1:1234:5678:9abc:def0:1', ['6to4 10.0.0.1']],
    // Teredo: client IPv4 is the last 32 bits XOR 0xffffffff (server 65.54.227.120 is not it)
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', ['teredo 192.0.2.45']],
    ['2001::ffff:ffff', ['teredo 0.0.0.0']],
  ];
  for (const [text, want] of table) assert.deepEqual(widen(text), want, text);
});

test('widening table: mapped is already IPv4 after canonicalisation', () => {
  assert.deepEqual(canonicalIp('::ffff:127.0.0.1'), { address: '127.0.0.1', family: 4 });
  assert.deepEqual(canonicalIp('::FFFF:7F00:1'), { address: '127.0.0.1', family: 4 });
  assert.deepEqual(embeddedIpv4({ family: 6, words: [0, 0, 0xffff, 0x7f000001] }), [{ form: 'mapped', v4: 0x7f000001 }]);
});

test('not widened: ::, ::1, IPv4, ordinary IPv6 and near misses of each prefix', () => {
  for (const text of [
    '::', '::1', '127.0.0.1', '2001:db8::7f00:1', 'fe80::1', '::1:0:0:0', '::ffff:1:0:0',
    '64:ff9b:0:0:0:1::', '64:ff9b:2::7f00:1', '65:ff9b::7f00:1', '2003:7f00:1::', '2001:1::7f00:1', '2001:db8::',
  ]) {
    assert.deepEqual(widen(text), [], text);
  }
});

test('property: every encoding of an IPv4 address widens to it', () => {
  const u16 = fc.integer({ min: 0, max: 0xffff });
  const filler = fc.record({ a: u16, b: u16, c: u16, d: fc.integer({ min: 0, max: 0xffffffff }) });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), filler, (v4, f) => {
      for (const { form, text } of ipv6Encodings(v4, f)) {
        const c = canonicalIp(text);
        assert.ok(c, text);
        const ip = parseIpValue(c.address)!;
        if (form === 'mapped') {
          assert.deepEqual(ip, { family: 4, words: [v4] }, text);
          continue;
        }
        const found = embeddedIpv4(ip);
        assert.ok(found.some((e) => e.form === form && e.v4 === v4), `${text} (${form}) should embed ${formatIpv4(v4)}`);
      }
    }),
    { numRuns: 2000 },
  );
});

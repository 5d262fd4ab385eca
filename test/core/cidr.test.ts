import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { canonicalIp } from '../../src/core/address.js';
import { cidrContains, parseCidr, type Cidr } from '../../src/core/cidr.js';
import { CidrSet } from '../../src/core/cidr-set.js';
import { formatIpv4, parseIpValue } from '../../src/core/ip-value.js';

function cidr(text: string): Cidr {
  const r = parseCidr(text);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

const ip = (text: string) => parseIpValue(text)!;

test('parseCidr: networks, bare addresses and the /0 /32 /128 edges', () => {
  assert.deepEqual(cidr('203.0.113.0/24'), { family: 4, words: [0xcb007100], prefix: 24, text: '203.0.113.0/24' });
  assert.deepEqual(cidr('203.0.113.7'), { family: 4, words: [0xcb007107], prefix: 32, text: '203.0.113.7/32' });
  assert.deepEqual(cidr('0.0.0.0/0'), { family: 4, words: [0], prefix: 0, text: '0.0.0.0/0' });
  assert.deepEqual(cidr('2001:DB8::/32'), { family: 6, words: [0x20010db8, 0, 0, 0], prefix: 32, text: '2001:db8::/32' });
  assert.deepEqual(cidr('::/0'), { family: 6, words: [0, 0, 0, 0], prefix: 0, text: '::/0' });
  assert.equal(cidr('2001:db8::1').text, '2001:db8::1/128');
  assert.equal(cidr('  10.0.0.0/8 ').text, '10.0.0.0/8');
  assert.equal(cidr('::1/128').text, '::1/128');
});

test('parseCidr: IPv4-mapped networks become IPv4 networks', () => {
  assert.equal(cidr('::ffff:10.0.0.0/104').text, '10.0.0.0/8');
  assert.equal(cidr('::ffff:127.0.0.1').text, '127.0.0.1/32');
  assert.equal(cidr('::ffff:0:0/96').text, '0.0.0.0/0');
  assert.equal(cidr('::fffe:0:0/95').text, '::fffe:0:0/95', 'wider than /96: stays IPv6 (and covers all IPv4, see CidrSet)');
  assert.equal(cidr('::fffe:0:0/95').family, 6);
});

test('parseCidr: strict, with messages that say what to write', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['203.0.113.7/24', /host bits set: write 203\.0\.113\.0\/24 for the network, or 203\.0\.113\.7\/32 for one address/],
    ['2001:db8::1/32', /host bits set: write 2001:db8::\/32 .* 2001:db8::1\/128/],
    ['10.0.0.0/33', /prefix length must be a whole number from 0 to 32/],
    ['2001:db8::/129', /0 to 128/],
    ['10.0.0.0/', /prefix length/],
    ['10.0.0.0/08', /prefix length/],
    ['10.0.0.0/-1', /prefix length/],
    ['10.0.0.0/8/8', /prefix length/],
    ['10.0.0.0 /8', /not an IPv4/],
    ['10/8', /not an IPv4 address or network \(dotted decimal/],
    ['127.1', /not an IPv4/],
    ['0x7f.0.0.1', /not an IPv4/],
    ['0177.0.0.1', /not an IPv4/],
    ['2130706433', /not an IPv4/],
    ['fe80::1%eth0/64', /zone/],
    ['[2001:db8::]/32', /without brackets/],
    ['2001:db8:::/32', /not an IPv6/],
    ['example.com', /not an IPv4/],
  ];
  for (const [text, message] of cases) {
    const r = parseCidr(text);
    assert.equal(typeof r, 'string', text);
    assert.match(r as string, message, text);
  }
});

test('cidrContains: edges', () => {
  assert.ok(cidrContains(cidr('0.0.0.0/0'), ip('255.255.255.255')));
  assert.ok(cidrContains(cidr('203.0.113.0/24'), ip('203.0.113.255')));
  assert.ok(!cidrContains(cidr('203.0.113.0/24'), ip('203.0.114.0')));
  assert.ok(!cidrContains(cidr('203.0.113.0/24'), ip('::ffff:203.0.112.255')));
  assert.ok(cidrContains(cidr('203.0.113.0/24'), ip('::ffff:203.0.113.9')));
  assert.ok(cidrContains(cidr('2001:db8::/32'), ip('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff')));
  assert.ok(!cidrContains(cidr('2001:db8::/32'), ip('2001:db9::')));
  assert.ok(cidrContains(cidr('2001:db8::1'), ip('2001:db8::1')));
  assert.ok(!cidrContains(cidr('2001:db8::1'), ip('2001:db8::')));
  assert.ok(!cidrContains(cidr('::/0'), ip('1.2.3.4')), 'cidrContains is per family; CidrSet adds the mapped rule');
});

test('CidrSet: most specific rule wins, duplicates collapse, families stay apart', () => {
  const set = new CidrSet(['10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.1.0.0/16', '192.168.0.0/16', '2001:db8::/32', '2001:db8:1::/48'].map(cidr));
  assert.equal(set.size, 6);
  assert.equal(set.match(ip('10.1.2.3'))?.text, '10.1.2.0/24');
  assert.equal(set.match(ip('10.1.3.3'))?.text, '10.1.0.0/16');
  assert.equal(set.match(ip('10.2.0.0'))?.text, '10.0.0.0/8');
  assert.equal(set.match(ip('10.255.255.255'))?.text, '10.0.0.0/8');
  assert.equal(set.match(ip('11.0.0.0')), undefined);
  assert.equal(set.match(ip('9.255.255.255')), undefined);
  assert.equal(set.match(ip('192.169.0.0')), undefined);
  assert.equal(set.match(ip('2001:db8:1::5'))?.text, '2001:db8:1::/48');
  assert.equal(set.match(ip('2001:db8:2::5'))?.text, '2001:db8::/32');
  assert.equal(set.match(ip('::a01:203')), undefined, 'an IPv6 address is not matched by IPv4 rules');
  assert.equal(new CidrSet([]).match(ip('1.2.3.4')), undefined);
});

test('CidrSet: after a nested block ends, the enclosing block still matches', () => {
  const set = new CidrSet(['10.0.0.0/8', '10.0.0.0/24', '10.0.1.0/24', '10.0.2.7'].map(cidr));
  assert.equal(set.match(ip('10.0.2.8'))?.text, '10.0.0.0/8');
  assert.equal(set.match(ip('10.0.2.7'))?.text, '10.0.2.7/32');
  assert.equal(set.match(ip('10.0.0.0'))?.text, '10.0.0.0/24');
});

test('CidrSet: /0, /32 and /128 edges', () => {
  const set = new CidrSet(['0.0.0.0/0', '255.255.255.255/32', '::/0', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128'].map(cidr));
  assert.equal(set.match(ip('0.0.0.0'))?.text, '0.0.0.0/0');
  assert.equal(set.match(ip('255.255.255.255'))?.text, '255.255.255.255/32');
  assert.equal(set.match(ip('::'))?.text, '::/0');
  assert.equal(set.match(ip('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'))?.text, '::/0');
  assert.equal(set.match(ip('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'))?.text, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128');
});

test('CidrSet: an IPv6 rule containing ::ffff:0:0/96 covers IPv4 clients (as net.BlockList does)', () => {
  const set = new CidrSet([cidr('::/0')]);
  assert.equal(set.match(ip('1.2.3.4'))?.text, '::/0');
  assert.equal(new CidrSet([cidr('::/95')]).match(ip('1.2.3.4')), undefined);
  assert.equal(new CidrSet([cidr('::fffe:0:0/95')]).match(ip('1.2.3.4'))?.text, '::fffe:0:0/95');
  assert.equal(new CidrSet([cidr('::/80')]).match(ip('1.2.3.4'))?.text, '::/80');
  const both = new CidrSet([cidr('::/0'), cidr('1.0.0.0/8')]);
  assert.equal(both.match(ip('1.2.3.4'))?.text, '1.0.0.0/8', 'the IPv4 rule is more specific');
});

/** Reference: compare the first `prefix` bits of two 32-bit values one bit at a time. */
function sameLeadingBits(a: number, b: number, prefix: number): boolean {
  for (let bit = 31; bit > 31 - prefix; bit--) if (((a >>> bit) & 1) !== ((b >>> bit) & 1)) return false;
  return true;
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });

test('property: IPv4 match agrees with a bit-by-bit reference', () => {
  fc.assert(
    fc.property(u32, u32, fc.integer({ min: 0, max: 32 }), (a, base, prefix) => {
      const netBits = prefix === 0 ? 0 : (base & (0xffffffff << (32 - prefix))) >>> 0;
      const rule = cidr(`${formatIpv4(netBits)}/${prefix}`);
      const near = (netBits + (a % 3) - 1) >>> 0; // also probe the edges of the block
      for (const x of [a, netBits, near]) {
        assert.equal(new CidrSet([rule]).match({ family: 4, words: [x] }) !== undefined, sameLeadingBits(x, netBits, prefix));
      }
    }),
    { numRuns: 3000 },
  );
});

const v4Cidr = fc.tuple(u32, fc.integer({ min: 0, max: 32 })).map(([a, p]) => {
  const masked = p === 0 ? 0 : (a & (0xffffffff << (32 - p))) >>> 0;
  return `${formatIpv4(masked)}/${p}`;
});
const v6Cidr = fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([a, p]) => {
  const w = parseIpValue(a)!;
  if (w.family === 4) return `${formatIpv4(w.words[0]!)}/${Math.min(p, 32)}`;
  const bits = w.words.map((x) => x.toString(2).padStart(32, '0')).join('').slice(0, p).padEnd(128, '0');
  const groups = bits.match(/.{16}/g)!.map((g) => parseInt(g, 2).toString(16));
  return `${groups.join(':')}/${p}`;
});
/** Addresses near the rules as well as random ones, so matches are frequent. */
const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4().map((a) => `::ffff:${a}`), fc.ipV4().map((a) => `::${a}`));

test('property (ACL-1): CidrSet agrees with net.BlockList after canonicalisation', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(v4Cidr, v6Cidr, v4Cidr.map((c) => c.replace(/\/\d+$/, ''))), { maxLength: 12 }), fc.array(address, { minLength: 1, maxLength: 12 }), (rules, addresses) => {
      const parsed = rules.map(cidr);
      const set = new CidrSet(parsed);
      const list = new net.BlockList();
      for (const r of parsed) {
        const [a, p] = r.text.split('/');
        list.addSubnet(a!, Number(p), r.family === 4 ? 'ipv4' : 'ipv6');
      }
      const probes = [...addresses, ...parsed.map((r) => r.text.split('/')[0]!)];
      for (const raw of probes) {
        const c = canonicalIp(raw)!;
        const ours = set.match(parseIpValue(c.address)!) !== undefined;
        assert.equal(ours, list.check(c.address, c.family === 4 ? 'ipv4' : 'ipv6'), `${raw} against ${rules.join(', ')}`);
      }
    }),
    { numRuns: 1500 },
  );
});

test('property: the rule CidrSet returns contains the address and is the most specific one', () => {
  // Rules and addresses from one /16, so nesting and matches are common.
  const inTen = fc.integer({ min: 0x0a000000, max: 0x0a00ffff });
  const nested = fc.tuple(inTen, fc.integer({ min: 8, max: 32 })).map(([x, p]) => `${formatIpv4((x & (0xffffffff << (32 - p))) >>> 0)}/${p}`);
  fc.assert(
    fc.property(fc.array(nested, { maxLength: 20 }), inTen, (rules, a) => {
      const parsed = rules.map(cidr);
      const x = { family: 4 as const, words: [a] };
      const got = new CidrSet(parsed).match(x);
      const containing = parsed.filter((r) => cidrContains(r, x));
      if (containing.length === 0) return assert.equal(got, undefined);
      assert.ok(got && cidrContains(got, x));
      assert.equal(got.prefix, Math.max(...containing.map((r) => r.prefix)));
    }),
    { numRuns: 2000 },
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalIp } from '../../../src/core/address.js';
import { isSluiceError } from '../../../src/core/errors.js';
import { compileAcl } from '../../../src/admission/acl/acl-policy.js';
import { aclSpecIssues, type AclSpec } from '../../../src/core/acl-spec.js';
import type { CountryLookup } from '../../../src/admission/acl/country.js';
import { formatIpv4, parseIpValue } from '../../../src/core/ip-value.js';
import { ipv6Encodings } from './encodings.js';

/** Checks a client as a listener would: canonicalise, then check. */
function verdict(spec: AclSpec, raw: string, geo?: CountryLookup) {
  const c = canonicalIp(raw);
  assert.ok(c, `${raw} is an IP`);
  return compileAcl(spec, geo).check(c.address, c.family);
}

test('an empty ACL admits everyone and says it is empty', () => {
  const acl = compileAcl({});
  assert.equal(acl.empty, true);
  assert.equal(acl.check('203.0.113.7', 4), undefined);
  assert.equal(acl.check('not an ip'), undefined);
  assert.equal(compileAcl({ allow: [], deny: [], countries: { allow: [], deny: [] } }).empty, true);
});

test('deny wins over allow; an absent allow list admits everyone else', () => {
  const spec: AclSpec = { allow: ['203.0.113.0/24', '2001:db8::/32'], deny: ['203.0.113.7/32'] };
  assert.deepEqual(verdict(spec, '203.0.113.7'), { reason: 'acl-cidr', detail: 'deny 203.0.113.7/32', observeOnly: false });
  assert.equal(verdict(spec, '203.0.113.8'), undefined);
  assert.equal(verdict(spec, '2001:db8::5'), undefined);
  assert.deepEqual(verdict(spec, '198.51.100.1'), { reason: 'acl-cidr', detail: 'not in acl.allow', observeOnly: false });
  assert.deepEqual(verdict(spec, '2001:db9::5')?.detail, 'not in acl.allow');
  const denyOnly: AclSpec = { deny: ['203.0.113.7'] };
  assert.equal(verdict(denyOnly, '198.51.100.1'), undefined);
  assert.equal(verdict(denyOnly, '203.0.113.7')?.reason, 'acl-cidr');
});

test('observeOnly returns the would-be denial flagged to admit', () => {
  const acl = compileAcl({ deny: ['10.0.0.0/8'], observeOnly: true });
  assert.equal(acl.observeOnly, true);
  assert.deepEqual(acl.check('10.1.2.3', 4), { reason: 'acl-cidr', detail: 'deny 10.0.0.0/8', observeOnly: true });
  assert.equal(acl.check('11.1.2.3', 4), undefined);
});

test('ACL-2 dual-stack: IPv4 rules apply to ::ffff: clients, IPv6 rules to IPv6 clients', () => {
  const spec: AclSpec = { deny: ['127.0.0.0/8', '2001:db8::/32'] };
  for (const raw of ['127.0.0.1', '::ffff:127.0.0.1', '::FFFF:7F00:1', '[::ffff:127.0.0.9]', '0:0:0:0:0:ffff:7f00:1']) {
    assert.equal(verdict(spec, raw)?.detail, 'deny 127.0.0.0/8', raw);
  }
  assert.equal(verdict(spec, '2001:db8::1')?.detail, 'deny 2001:db8::/32');
  assert.equal(verdict(spec, '2001:db9::1'), undefined);
  // Without canonicalisation the mapped text is still read as IPv4.
  assert.equal(compileAcl(spec).check('::ffff:127.0.0.1', 6)?.detail, 'deny 127.0.0.0/8');
  // A mapped rule is an IPv4 rule.
  assert.equal(verdict({ allow: ['::ffff:10.0.0.0/104'] }, '10.9.9.9'), undefined);
});

test('the forms that bypassed net.BlockList under a 127.0.0.0/8 rule are denied', () => {
  const spec: AclSpec = { deny: ['127.0.0.0/8'] };
  assert.equal(verdict(spec, '::127.0.0.1')?.detail, 'deny 127.0.0.0/8 (compatible address embeds 127.0.0.1)');
  assert.equal(verdict(spec, '64:ff9b::7f00:1')?.detail, 'deny 127.0.0.0/8 (nat64 address embeds 127.0.0.1)');
  assert.equal(verdict(spec, '2002:7f00:1::')?.detail, 'deny 127.0.0.0/8 (6to4 address embeds 127.0.0.1)');
  assert.equal(verdict(spec, '2001:0:4136:e378:8000:63bf:80ff:fffe')?.detail, 'deny 127.0.0.0/8 (teredo address embeds 127.0.0.1)');
  assert.equal(verdict(spec, '64:ff9b:1::7f00:1')?.detail, 'deny 127.0.0.0/8 (nat64-local address embeds 127.0.0.1)');
  // `0.0.0.0` and `::` are loopback-like only as destinations; as sources they embed nothing.
  assert.equal(verdict(spec, '0.0.0.0'), undefined);
  assert.equal(verdict(spec, '::'), undefined);
  assert.equal(verdict(spec, '::1'), undefined, '::1 is IPv6 loopback: it needs its own rule');
  assert.equal(verdict({ deny: ['::1'] }, '::1')?.detail, 'deny ::1/128');
});

/** SSRF-1's deny ranges (threats-and-tests.md §5.G), IPv4 and IPv6. */
const SSRF_V4 = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24',
  '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24',
  '224.0.0.0/4', '240.0.0.0/4', '255.255.255.255/32',
];
const SSRF_V6 = ['::/128', '::1/128', '::/96', '::ffff:0:0/96', '64:ff9b::/96', '2002::/16', 'fc00::/7', 'fe80::/10', 'ff00::/8', 'fd00:ec2::254'];

test('SSRF-1: every encoding of every address in every deny range is denied (0 bypasses)', () => {
  // IPv4 rules alone, so that no IPv6 rule (::/96, 2002::/16, 64:ff9b::/96) catches an encoding
  // before the widening is put to the test.
  const acl = compileAcl({ deny: SSRF_V4 });
  let checked = 0;
  for (const range of SSRF_V4) {
    const [base, len] = range.split('/');
    const first = parseIpValue(base!)!.words[0]!;
    const last = (first + 2 ** (32 - Number(len)) - 1) >>> 0;
    for (const v4 of [first, last, (first + Math.floor((last - first) / 3)) >>> 0]) {
      const dotted = formatIpv4(v4);
      const texts = [dotted, ...ipv6Encodings(v4).map((e) => e.text), ...ipv6Encodings(v4, { a: 0xbeef, b: 0x1234, c: 0x8000, d: 0xdeadbeef }).map((e) => e.text)];
      for (const raw of texts) {
        const c = canonicalIp(raw)!;
        assert.ok(acl.check(c.address, c.family), `${raw} (${range}) must be denied`);
        checked++;
      }
    }
  }
  const acl6 = compileAcl({ deny: SSRF_V6 });
  for (const raw of ['::', '::1', '::2', 'fc00::1', 'fdff::1', 'fe80::1', 'febf:ffff::1', 'ff02::1', 'fd00:ec2::254', '2002::1', '64:ff9b::1', '::ffff:8.8.8.8']) {
    const c = canonicalIp(raw)!;
    assert.ok(acl6.check(c.address, c.family), `${raw} must be denied`);
    checked++;
  }
  // ::ffff:0:0/96 is a rule on every IPv4 client, since they are one address space.
  assert.equal(acl6.check('8.8.8.8', 4)?.detail, 'deny 0.0.0.0/0');
  assert.ok(checked > 700);
});

test('SSRF-1: numeric spellings are not IP addresses: canonicalIp refuses them and check fails closed', () => {
  const acl = compileAcl({ deny: ['127.0.0.0/8'] });
  for (const raw of ['2130706433', '0x7f.1', '0x7f000001', '0177.0.0.1', '127.1', '127.0.0.1.', '127.000.000.001', '0127.0.0.1']) {
    assert.equal(canonicalIp(raw), undefined, raw);
    assert.deepEqual(acl.check(raw), { reason: 'acl-cidr', detail: `${JSON.stringify(raw)} is not an IP address`, observeOnly: false });
  }
  // A zone is dropped by canonicalIp, so the rule still applies.
  assert.equal(verdict({ deny: ['fe80::/10'] }, 'fe80::1%lo')?.detail, 'deny fe80::/10');
});

test('allow rules are not borrowed: an IPv6 form of an allowed IPv4 address is refused unless mapped', () => {
  const spec: AclSpec = { allow: ['203.0.113.0/24'] };
  assert.equal(verdict(spec, '::ffff:203.0.113.5'), undefined);
  for (const { form, text } of ipv6Encodings(0xcb007105)) {
    if (form === 'mapped') continue;
    assert.deepEqual(verdict(spec, text), { reason: 'acl-cidr', detail: 'not in acl.allow', observeOnly: false }, text);
  }
});

test('an IPv6 rule wider than /96 that holds the mapped block covers IPv4 clients', () => {
  assert.equal(verdict({ deny: ['::/0'] }, '192.0.2.1')?.detail, 'deny ::/0');
  assert.equal(verdict({ allow: ['::/0'] }, '192.0.2.1'), undefined);
  assert.equal(verdict({ allow: ['2000::/3'] }, '192.0.2.1')?.detail, 'not in acl.allow');
});

test('aclSpecIssues: every problem with a path relative to the acl block', () => {
  const issues = aclSpecIssues(
    {
      allow: ['10.0.0.0/8', '10.0.0.1/8', 'bogus'],
      deny: ['2001:db8::/129'],
      countries: { allow: ['DE', 'de', 'NL'], deny: ['NL', 'USA'], unknown: 'maybe' as never },
    },
    false,
  );
  assert.deepEqual(
    issues.map((i) => i.path),
    ['allow[1]', 'allow[2]', 'deny[0]', 'countries.allow[1]', 'countries.deny[1]', 'countries.allow[2]', 'countries.unknown', 'countries'],
  );
  assert.match(issues[0]!.message, /host bits set/);
  assert.match(issues[3]!.message, /two uppercase letters .* got "de"/);
  assert.match(issues[5]!.message, /NL is in both countries.allow and countries.deny/);
  assert.match(issues[6]!.message, /expected one of unlisted, deny, allow/);
  assert.match(issues[7]!.message, /set geoip.database/);
  assert.deepEqual(aclSpecIssues({ countries: { unknown: 'allow' } }, false), [], 'unknown: allow alone needs no database');
  assert.equal(aclSpecIssues({ countries: { unknown: 'deny' } }, false)[0]?.path, 'countries');
});

test('compileAcl throws SLUICE_ERR_CONFIG_INVALID naming the problems', () => {
  assert.throws(
    () => compileAcl({ deny: ['10.0.0.1/8'] }),
    (err) => isSluiceError(err, 'SLUICE_ERR_CONFIG_INVALID') && /deny\[0\]: "10\.0\.0\.1\/8" has host bits set/.test(err.message),
  );
  assert.throws(() => compileAcl({ countries: { deny: ['CN'] } }), (err) => isSluiceError(err, 'SLUICE_ERR_CONFIG_INVALID'));
});

/** A country database from a table, so policy logic is tested apart from MaxMind. */
function fakeGeo(table: Record<string, string>): CountryLookup & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    country(address) {
      asked.push(address);
      return table[address];
    },
  };
}

const GEO = { '198.51.100.1': 'DE', '198.51.100.2': 'CN', '198.51.100.3': 'FR', '2001:db8::de': 'DE' };

test('countries: allow and deny lists, deny wins, reason acl-country', () => {
  const geo = fakeGeo(GEO);
  const spec: AclSpec = { countries: { allow: ['DE', 'FR'], deny: ['CN'] } };
  assert.equal(verdict(spec, '198.51.100.1', geo), undefined);
  assert.equal(verdict(spec, '2001:db8::de', geo), undefined);
  assert.deepEqual(verdict(spec, '198.51.100.2', geo), { reason: 'acl-country', detail: 'country CN is in countries.deny', observeOnly: false });
  assert.deepEqual(verdict({ countries: { allow: ['DE'] } }, '198.51.100.3', geo)?.detail, 'country FR is not in countries.allow');
  assert.equal(verdict({ countries: { deny: ['CN'] } }, '198.51.100.3', geo), undefined);
  assert.equal(verdict({ deny: ['198.51.100.1'], countries: { allow: ['DE'] } }, '198.51.100.1', geo)?.reason, 'acl-cidr', 'CIDR deny is checked first');
});

test('countries: the unknown policy (default unlisted, deny, allow)', () => {
  const geo = fakeGeo(GEO);
  const unknownIp = '10.0.0.1';
  const cases: Array<[AclSpec['countries'], string | undefined]> = [
    [{ deny: ['CN'] }, undefined], // only a deny list: admitted
    [{ allow: ['DE'] }, 'country unknown, so not in countries.allow'], // an allow list: refused
    [{ deny: ['CN'], unknown: 'deny' }, 'country unknown and countries.unknown is deny'],
    [{ allow: ['DE'], unknown: 'allow' }, undefined],
    [{ unknown: 'deny' }, 'country unknown and countries.unknown is deny'],
    [{ unknown: 'allow' }, undefined],
  ];
  for (const [countries, detail] of cases) {
    assert.equal(verdict({ countries }, unknownIp, geo)?.detail, detail, JSON.stringify(countries));
  }
  // unknown: allow never admits by itself when only acl.allow gates.
  assert.equal(verdict({ allow: ['192.0.2.0/24'], countries: { deny: ['CN'], unknown: 'allow' } }, unknownIp, geo)?.detail, 'not in acl.allow');
});

test('countries and acl.allow: a client admitted by either allow list is admitted', () => {
  const geo = fakeGeo(GEO);
  const spec: AclSpec = { allow: ['10.0.0.0/8'], countries: { allow: ['DE'] } };
  assert.equal(verdict(spec, '10.1.1.1', geo), undefined, 'LAN client, country unknown');
  assert.equal(verdict(spec, '198.51.100.1', geo), undefined, 'DE client');
  assert.deepEqual(verdict(spec, '198.51.100.3', geo), { reason: 'acl-country', detail: 'not in acl.allow; country FR is not in countries.allow', observeOnly: false });
  assert.equal(verdict({ ...spec, countries: { allow: ['DE'], unknown: 'deny' } }, '10.1.1.1', geo)?.detail, 'country unknown and countries.unknown is deny');
});

test('countries: embedded forms may be refused by their IPv4 country but never admitted by it', () => {
  const geo = fakeGeo(GEO);
  const allowDe: AclSpec = { countries: { allow: ['DE'] } };
  const de = 0xc6336401; // 198.51.100.1, DE
  for (const { form, text } of ipv6Encodings(de)) {
    const c = canonicalIp(text)!;
    const d = compileAcl(allowDe, geo).check(c.address);
    if (form === 'mapped') assert.equal(d, undefined, text);
    else assert.equal(d?.reason, 'acl-country', text);
  }
  assert.equal(verdict(allowDe, '2002:c633:6401::', geo)?.detail, 'country DE (6to4 address embeds 198.51.100.1) cannot satisfy countries.allow');
  const denyCn: AclSpec = { countries: { deny: ['CN'] } };
  assert.equal(verdict(denyCn, '2002:c633:6402::', geo)?.detail, 'country CN is in countries.deny (6to4 address embeds 198.51.100.2)');
  assert.equal(verdict(denyCn, '64:ff9b::198.51.100.2', geo)?.reason, 'acl-country');
  assert.equal(verdict(denyCn, '::198.51.100.2', geo)?.reason, 'acl-country');
  assert.equal(verdict(denyCn, '2002:c633:6401::', geo), undefined, 'a DE 6to4 client is admitted by a deny-only list');
  assert.equal(verdict({ countries: { allow: ['DE'], unknown: 'deny' } }, '2002:a00:1::', geo)?.detail, 'country unknown (6to4 address embeds 10.0.0.1) and countries.unknown is deny');
  // The IPv6 address itself is never looked up for these forms (a database would alias it).
  geo.asked.length = 0;
  verdict(denyCn, '2002:c633:6401::', geo);
  assert.deepEqual(geo.asked, ['198.51.100.1']);
});

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const v4Rule = fc.tuple(u32, fc.integer({ min: 0, max: 32 })).map(([a, p]) => `${formatIpv4(p === 0 ? 0 : (a & (0xffffffff << (32 - p))) >>> 0)}/${p}`);
const u16 = fc.integer({ min: 0, max: 0xffff });
const filler = fc.record({ a: u16, b: u16, c: u16, d: u32 });

test('property (P-ACL): an encoding of a is denied exactly when a is (deny rules on IPv4)', () => {
  fc.assert(
    fc.property(fc.array(v4Rule, { minLength: 1, maxLength: 8 }), u32, filler, (rules, a, f) => {
      // Bias half the runs to an address inside the first rule.
      const first = parseIpValue(rules[0]!.split('/')[0]!)!.words[0]!;
      const v4 = a % 2 === 0 ? a : (first | (a & (2 ** (32 - Number(rules[0]!.split('/')[1])) - 1))) >>> 0;
      const acl = compileAcl({ deny: rules });
      const denied = acl.check(formatIpv4(v4)) !== undefined;
      for (const { form, text } of ipv6Encodings(v4, f)) {
        const c = canonicalIp(text)!;
        const d = acl.check(c.address) !== undefined;
        // nat64-local also reads the other RFC 6052 placements, so it may deny more, never less.
        if (form === 'nat64-local') assert.ok(!denied || d, text);
        else assert.equal(d, denied, `${text} vs ${formatIpv4(v4)} under ${rules.join(', ')}`);
      }
    }),
    { numRuns: 1500 },
  );
});

test('property: no IPv6 form of an allowed-only IPv4 address is admitted unless mapped', () => {
  fc.assert(
    fc.property(fc.array(v4Rule, { minLength: 1, maxLength: 8 }), u32, filler, (rules, a, f) => {
      const first = parseIpValue(rules[0]!.split('/')[0]!)!.words[0]!;
      const v4 = (first | (a & (2 ** (32 - Number(rules[0]!.split('/')[1])) - 1))) >>> 0;
      const acl = compileAcl({ allow: rules });
      assert.equal(acl.check(formatIpv4(v4)), undefined);
      for (const { form, text } of ipv6Encodings(v4, f)) {
        const c = canonicalIp(text)!;
        assert.equal(acl.check(c.address) === undefined, form === 'mapped', text);
      }
    }),
    { numRuns: 1500 },
  );
});

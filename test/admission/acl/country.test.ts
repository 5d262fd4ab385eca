import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp } from '../../../src/core/address.js';
import { isSluiceError } from '../../../src/core/errors.js';
import { compileAcl } from '../../../src/admission/acl/acl-policy.js';
import { countryCodeIssue, type AclSpec } from '../../../src/core/acl-spec.js';
import { countryOfRecord, openCountryDatabase, type CountryLookup } from '../../../src/admission/acl/country.js';
import { ipv6Encodings } from './encodings.js';

/** MaxMind's own test database; ../shared/vectors/geoip/README.md lists what maps where. */
// ../shared sits beside the repository; this file runs from dist/test/admission/acl.
const VECTORS = new URL('../../../../../shared/vectors/geoip/', import.meta.url);
const DB = fileURLToPath(new URL('GeoLite2-Country-Test.mmdb', VECTORS));
const JSON_SOURCE = fileURLToPath(new URL('GeoLite2-Country-Test.json', VECTORS));

const geo = await openCountryDatabase(DB);

function check(spec: AclSpec, raw: string, lookup: CountryLookup = geo) {
  const c = canonicalIp(raw)!;
  return compileAcl(spec, lookup).check(c.address, c.family);
}

test('the test database answers the documented addresses', () => {
  assert.match(geo.description, /^GeoLite2-Country built \d{4}-/);
  const known: Array<[string, string]> = [
    ['2.125.160.216', 'GB'], // registered in FR: the location wins
    ['50.114.0.1', 'US'],
    ['67.43.156.1', 'BT'],
    ['81.2.69.160', 'GB'],
    ['89.160.20.129', 'SE'],
    ['202.196.224.1', 'PH'], // represented_country US is ignored
    ['2001:218::1', 'JP'],
    ['2a02:d180::1', 'DE'],
  ];
  for (const [ip, code] of known) assert.equal(geo.country(ip), code, ip);
});

test('unknown: private, loopback, reserved, unlisted and continent-only addresses', () => {
  for (const ip of ['10.0.0.1', '127.0.0.1', '192.0.2.1', '0.0.0.0', '255.255.255.255', '::1', '::', 'fe80::1', '2001:db8::1', '2a02:d500::1', 'bogus', '']) {
    assert.equal(geo.country(ip), undefined, ip);
  }
});

test('country allow list against the real database, with the default unknown policy', () => {
  const spec: AclSpec = { countries: { allow: ['GB', 'JP'] } };
  assert.equal(check(spec, '81.2.69.160'), undefined);
  assert.equal(check(spec, '::ffff:81.2.69.160'), undefined, 'mapped is the IPv4 client');
  assert.equal(check(spec, '2001:218::1'), undefined);
  assert.deepEqual(check(spec, '50.114.0.1'), { reason: 'acl-country', detail: 'country US is not in countries.allow', observeOnly: false });
  assert.equal(check(spec, '10.0.0.1')?.detail, 'country unknown, so not in countries.allow');
  assert.equal(check({ countries: { allow: ['GB'], unknown: 'allow' } }, '10.0.0.1'), undefined);
  assert.equal(check({ allow: ['10.0.0.0/8'], countries: { allow: ['GB'] } }, '10.0.0.1'), undefined);
});

test('no borrowing through the database: it aliases ::/96 and 2002::/16 to IPv4, the ACL does not', () => {
  // The test database itself answers GB for the 6to4 and compatible forms of 81.2.69.160 ...
  assert.equal(geo.country('2002:5102:45a0::'), 'GB');
  assert.equal(geo.country('::81.2.69.160'), 'GB');
  // ... but an allow list of GB must not admit them.
  const spec: AclSpec = { countries: { allow: ['GB'] } };
  for (const { form, text } of ipv6Encodings(0x510245a0)) {
    assert.equal(check(spec, text)?.reason, form === 'mapped' ? undefined : 'acl-country', text);
  }
});

test('country deny list catches every IPv4-embedding form of a denied country', () => {
  const spec: AclSpec = { countries: { deny: ['US'] } };
  assert.equal(check(spec, '50.114.0.1')?.detail, 'country US is in countries.deny');
  for (const { text } of ipv6Encodings(0x32720001)) {
    assert.equal(check(spec, text)?.reason, 'acl-country', text);
  }
  assert.equal(check(spec, '81.2.69.160'), undefined);
  assert.equal(check(spec, '10.0.0.1'), undefined, 'only a deny list: unknown is admitted');
  assert.equal(check({ countries: { deny: ['US'], unknown: 'deny' } }, '10.0.0.1')?.detail, 'country unknown and countries.unknown is deny');
  assert.equal(check({ countries: { deny: ['US'], unknown: 'deny' } }, '2a02:d500::1')?.reason, 'acl-country', 'continent-only record is unknown');
});

test('ACL-3: swapping the database mid-stream answers every lookup', async () => {
  const spec: AclSpec = { countries: { allow: ['GB'] } };
  let current = compileAcl(spec, geo);
  let decisions = 0;
  let wrong = 0;
  const reopening = openCountryDatabase(DB).then((next) => {
    current = compileAcl(spec, next); // the swap a reload does: build, then replace the reference
  });
  let done = false;
  void reopening.then(() => (done = true));
  while (!done || decisions < 2000) {
    for (const [ip, admit] of [['81.2.69.160', true], ['50.114.0.1', false], ['10.0.0.1', false]] as const) {
      if ((current.check(ip, 4) === undefined) !== admit) wrong++;
      decisions++;
    }
    await new Promise((r) => setImmediate(r));
  }
  await reopening;
  assert.equal(wrong, 0);
});

test('openCountryDatabase: a missing or non-MaxMind file is SLUICE_ERR_CONFIG_READ', async () => {
  await assert.rejects(openCountryDatabase('/nonexistent/GeoLite2-Country.mmdb'), (err) => isSluiceError(err, 'SLUICE_ERR_CONFIG_READ') && /cannot open/.test(err.message));
  await assert.rejects(openCountryDatabase(JSON_SOURCE), (err) => isSluiceError(err, 'SLUICE_ERR_CONFIG_READ'));
});

test('countryOfRecord: location first, then registration; junk is unknown', () => {
  assert.equal(countryOfRecord({ country: { iso_code: 'GB' } as never, registered_country: { iso_code: 'FR' } as never }), 'GB');
  assert.equal(countryOfRecord({ registered_country: { iso_code: 'FR' } as never }), 'FR');
  assert.equal(countryOfRecord({ continent: { code: 'EU' } as never }), undefined);
  assert.equal(countryOfRecord({ country: { iso_code: 'gb' } as never }), undefined);
  assert.equal(countryOfRecord(null), undefined);
});

test('countryCodeIssue: two uppercase letters', () => {
  for (const ok of ['DE', 'NL', 'XK']) assert.equal(countryCodeIssue(ok), undefined);
  for (const bad of ['de', 'DEU', 'D', '', 'D1', ' DE', 42]) assert.match(countryCodeIssue(bad)!, /two uppercase letters/);
});

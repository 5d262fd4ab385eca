import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../helpers/manual-clock.js';
import { AdmissionLimits, type LimitSettings } from '../../src/admission/limits.js';
import { sourceKey } from '../../src/admission/source-key.js';
import { canonicalIp } from '../../src/core/address.js';

const ip = (text: string) => {
  const c = canonicalIp(text)!;
  return { address: c.address, family: c.family };
};

test('source key: IPv6 is aggregated per /64 by default, IPv4 stays per address; prefixes are configurable', () => {
  assert.equal(sourceKey(ip('2001:db8:1:2:aaaa:bbbb:cccc:dddd')), '2001:db8:1:2::/64');
  assert.equal(sourceKey(ip('2001:DB8:1:2::1')), '2001:db8:1:2::/64');
  assert.equal(sourceKey(ip('2001:db8:1:3::1')), '2001:db8:1:3::/64');
  assert.equal(sourceKey(ip('::ffff:198.51.100.7')), '198.51.100.7', 'mapped IPv4 is IPv4');
  assert.equal(sourceKey(ip('198.51.100.7')), '198.51.100.7');
  assert.equal(sourceKey(ip('2001:db8:1:2::1'), { ipv4: 32, ipv6: 128 }), '2001:db8:1:2::1');
  assert.equal(sourceKey(ip('2001:db8:1:2ff::1'), { ipv4: 32, ipv6: 56 }), '2001:db8:1:200::/56');
  assert.equal(sourceKey(ip('2001:db8:1:2::1'), { ipv4: 32, ipv6: 48 }), '2001:db8:1::/48');
  assert.equal(sourceKey(ip('2001:db8:ffff:2::1'), { ipv4: 32, ipv6: 36 }), '2001:db8:f000::/36');
  assert.equal(sourceKey(ip('198.51.100.7'), { ipv4: 24, ipv6: 64 }), '198.51.100.0/24');
  assert.equal(sourceKey(ip('198.51.100.7'), { ipv4: 0, ipv6: 64 }), '0.0.0.0/0');
});

const settings = (over: Partial<LimitSettings> = {}): LimitSettings => ({
  maxPerRoute: 0,
  maxPerSource: 3,
  rate: { perSecond: 0, burst: 0 },
  ratePerSource: { perSecond: 1, burst: 5 },
  ...over,
});

/** Admits and acquires like a route does; returns the refusal or the key held. */
function open(limits: AdmissionLimits, address: string): { refused?: string; key: string } {
  const key = limits.keyOf(ip(address));
  const refused = limits.admit(key);
  if (!refused) limits.acquire(key);
  return { key, ...(refused ? { refused } : {}) };
}

test('limits: many /128s inside one /64 share the per-source cap and the per-source rate; another /64 and IPv4 are unaffected', () => {
  const clock = new ManualClock();
  const limits = new AdmissionLimits(settings(), clock);
  const held = ['::1', '::2', '::3'].map((h) => open(limits, `2001:db8:1:2${h}`));
  assert.ok(held.every((h) => h.refused === undefined));
  assert.equal(limits.activeFor('2001:db8:1:2::/64'), 3);
  assert.equal(open(limits, '2001:db8:1:2::4').refused, 'limit-source-sessions', 'a fresh /128 in the same /64 meets the cap');
  assert.equal(open(limits, '2001:db8:1:3::1').refused, undefined, 'a different /64 is its own source');
  limits.release(held[0]!.key);
  limits.release(held[1]!.key);
  assert.equal(open(limits, '2001:db8:1:2::5').refused, undefined, '4th creation token of the /64');
  assert.equal(open(limits, '2001:db8:1:2::6').refused, undefined, '5th creation token of the /64');
  limits.release(held[2]!.key);
  assert.equal(open(limits, '2001:db8:1:2::7').refused, 'limit-source-rate', 'under the cap again, but the /64 spent its burst');
  assert.equal(open(limits, '2001:db8:1:3::2').refused, undefined, 'the other /64 still has tokens');
  clock.advance(1000);
  assert.equal(open(limits, '2001:db8:1:2::8').refused, undefined, 'one token back after a second');

  // IPv4: each address is its own source, as before.
  for (const h of ['1', '2', '3']) assert.equal(open(limits, `198.51.100.${h}`).refused, undefined);
  assert.equal(open(limits, '198.51.100.4').refused, undefined);
  for (let i = 0; i < 2; i++) open(limits, '198.51.100.1');
  assert.equal(open(limits, '198.51.100.1').refused, 'limit-source-sessions');
});

test('limits: ipv6 /128 restores per-address keys; a prefix change on reload keeps live counts releasable', () => {
  const clock = new ManualClock();
  const limits = new AdmissionLimits(settings({ sourcePrefix: { ipv4: 32, ipv6: 128 } }), clock);
  for (let i = 1; i <= 4; i++) assert.equal(open(limits, `2001:db8:1:2::${i}`).refused, undefined);
  const live = open(limits, '2001:db8:1:2::9');
  limits.update(settings({ sourcePrefix: { ipv4: 32, ipv6: 64 } }));
  assert.equal(limits.keyOf(ip('2001:db8:1:2::9')), '2001:db8:1:2::/64');
  limits.release(live.key);
  assert.equal(limits.activeFor('2001:db8:1:2::9'), 0, 'the session released the key it was admitted under');
  assert.equal(limits.active, 4);
});

test('limits: per-source counts stay exact when sources interleave, drop to 0 and come back', () => {
  const limits = new AdmissionLimits(settings({ maxPerSource: 2, ratePerSource: { perSecond: 0, burst: 0 } }), new ManualClock());
  const a = open(limits, '198.51.100.1').key;
  const b = open(limits, '198.51.100.2').key;
  assert.equal(open(limits, '198.51.100.1').refused, undefined);
  assert.equal(open(limits, '198.51.100.1').refused, 'limit-source-sessions', 'a counted twice, after b came between');
  assert.deepEqual([limits.activeFor(a), limits.activeFor(b), limits.active], [2, 1, 3]);
  limits.release(b);
  assert.equal(limits.activeFor(b), 0, 'b at 0 has left the counts');
  limits.release(a);
  limits.release(a);
  assert.deepEqual([limits.activeFor(a), limits.active], [0, 0]);
  // Back from 0, a is counted afresh (not in a count that already left the map), and b too.
  assert.equal(open(limits, '198.51.100.1').refused, undefined);
  assert.equal(open(limits, '198.51.100.2').refused, undefined);
  assert.equal(open(limits, '198.51.100.1').refused, undefined);
  assert.equal(open(limits, '198.51.100.1').refused, 'limit-source-sessions');
  assert.deepEqual([limits.activeFor(a), limits.activeFor(b)], [2, 1]);
  limits.release('203.0.113.9'); // never acquired: counts of others unchanged
  assert.deepEqual([limits.activeFor(a), limits.activeFor(b)], [2, 1]);
});

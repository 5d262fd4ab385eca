import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecisionStore, type HeldDecision } from '../../../src/admission/crowdsec/decision-store.js';
import { parseCidr, type Cidr } from '../../../src/core/cidr.js';
import { parseStreamBody, type StreamBody } from '../../../src/admission/crowdsec/stream-body.js';
import { parseIpValue } from '../../../src/core/ip-value.js';

let nextId = 1;
function d(scope: 'Ip' | 'Range', value: string, o: Record<string, unknown> = {}) {
  return { id: nextId++, origin: 'cscli', type: 'ban', scope, value, duration: '1h', scenario: 'manual', ...o };
}
function body(added: unknown[], deleted: unknown[] = []): StreamBody {
  const r = parseStreamBody(JSON.stringify({ new: added, deleted }));
  if (typeof r === 'string') throw new Error(r);
  return r;
}
const at = (s: DecisionStore, address: string, now = 0) => s.match(parseIpValue(address)!, now)?.detail;

test('single addresses and ranges, IPv4 and IPv6', () => {
  const s = new DecisionStore();
  s.replace(body([d('Ip', '192.0.2.1', { scenario: 'crowdsecurity/ssh-bf', origin: 'crowdsec' }), d('Ip', '2001:db8::5'), d('Range', '198.51.100.0/24'), d('Range', '2001:db8:1::/48')]), 0);
  assert.equal(at(s, '192.0.2.1'), 'crowdsecurity/ssh-bf (ban on Ip 192.0.2.1, origin crowdsec)');
  assert.equal(at(s, '192.0.2.2'), undefined);
  assert.match(at(s, '2001:db8::5')!, /Ip 2001:db8::5/);
  assert.match(at(s, '2001:DB8:0::5')!, /Ip 2001:db8::5/, 'any spelling');
  assert.match(at(s, '198.51.100.200')!, /Range 198.51.100.0\/24/);
  assert.match(at(s, '2001:db8:1:ffff::1')!, /Range 2001:db8:1::\/48/);
  assert.equal(at(s, '2001:db8:2::1'), undefined);
  assert.deepEqual(s.size, { ips: 2, ranges: 2 });
});

test('an IPv4 ban also refuses the IPv4-mapped client and IPv6 forms that embed the address', () => {
  const s = new DecisionStore();
  s.replace(body([d('Ip', '192.0.2.1'), d('Range', '203.0.113.0/24')]), 0);
  assert.equal(at(s, '::ffff:192.0.2.1'), 'manual (ban on Ip 192.0.2.1, origin cscli)', 'mapped is the IPv4 client itself');
  assert.match(at(s, '::ffff:c000:201')!, /Ip 192.0.2.1/);
  assert.match(at(s, '2002:c000:201::1')!, /Ip 192.0.2.1.*6to4 address embeds 192.0.2.1/);
  assert.match(at(s, '64:ff9b::cb00:7105')!, /Range 203.0.113.0\/24.*nat64 address embeds 203.0.113.5/);
  assert.equal(at(s, '2002:c000:202::1'), undefined);
});

test('deltas: deleting one of two decisions on an address leaves the other in force', () => {
  const s = new DecisionStore();
  const a = d('Ip', '192.0.2.1', { scenario: 'first' });
  const b = d('Ip', '192.0.2.1', { scenario: 'second' });
  s.replace(body([a]), 0);
  s.apply(body([b]), 0);
  assert.equal(s.decisions, 2);
  s.apply(body([], [a]), 0);
  assert.match(at(s, '192.0.2.1')!, /^second/);
  s.apply(body([], [{ id: b.id }]), 0);
  assert.equal(at(s, '192.0.2.1'), undefined);
  assert.deepEqual(s.size, { ips: 0, ranges: 0 });
  s.apply(body([], [{ id: 999_999 }]), 0); // unknown ids are harmless
});

test('a re-sent decision replaces the earlier copy (new duration), replace() drops what the full list lacks', () => {
  const s = new DecisionStore();
  const a = d('Ip', '192.0.2.1', { duration: '10s' });
  s.replace(body([a, d('Range', '198.51.100.0/24')]), 0);
  s.apply(body([{ ...a, duration: '1h' }]), 5_000);
  assert.equal(s.decisions, 2);
  assert.ok(at(s, '192.0.2.1', 20_000), 'the longer copy counts');
  s.replace(body([d('Ip', '192.0.2.9')]), 20_000);
  assert.equal(at(s, '192.0.2.1', 20_000), undefined);
  assert.equal(at(s, '198.51.100.1', 20_000), undefined);
  assert.ok(at(s, '192.0.2.9', 20_000));
});

test('expiry is honoured at lookup, for addresses and ranges, and sweep frees them', () => {
  const s = new DecisionStore();
  s.replace(body([d('Ip', '192.0.2.1', { duration: '2s' }), d('Range', '198.51.100.0/24', { duration: '3s' }), d('Ip', '192.0.2.2', { duration: '1h' })]), 1000);
  assert.ok(at(s, '192.0.2.1', 2999));
  assert.equal(at(s, '192.0.2.1', 3000), undefined);
  assert.ok(at(s, '198.51.100.7', 3999));
  assert.equal(at(s, '198.51.100.7', 4000), undefined);
  s.sweep(4000);
  assert.deepEqual(s.size, { ips: 1, ranges: 0 });
  assert.equal(s.decisions, 1);
});

test('an expired narrow range does not hide a live wider one', () => {
  const s = new DecisionStore();
  s.replace(body([d('Range', '10.0.0.0/8', { duration: '1h', scenario: 'wide' }), d('Range', '10.1.0.0/16', { duration: '1s', scenario: 'narrow' })]), 0);
  assert.match(at(s, '10.1.2.3', 500)!, /^narrow/, 'the most specific live range names the ban');
  assert.match(at(s, '10.1.2.3', 1000)!, /^wide/);
  s.apply(body([], []), 2000);
  assert.match(at(s, '10.1.2.3', 2000)!, /^wide/);
});

test('several decisions on one range expire one by one; the rest keep it banned', () => {
  const s = new DecisionStore();
  s.replace(
    body([
      d('Range', '10.0.0.0/8', { duration: '1s', scenario: 'a' }),
      d('Range', '10.0.0.0/8', { duration: '2s', scenario: 'b' }),
      d('Range', '10.0.0.0/8', { duration: '3s', scenario: 'c' }),
      d('Ip', '10.9.9.9', { duration: '1s', scenario: 'ip-a' }),
      d('Ip', '10.9.9.9', { duration: '2s', scenario: 'ip-b' }),
    ]),
    0,
  );
  assert.equal(s.decisions, 5);
  assert.match(at(s, '10.1.1.1', 0)!, /^a /);
  assert.match(at(s, '10.1.1.1', 1000)!, /^b /);
  assert.match(at(s, '10.9.9.9', 1000)!, /^ip-b /);
  assert.match(at(s, '10.1.1.1', 2500)!, /^c /);
  assert.equal(s.decisions, 3, 'expired range decisions were dropped by the rebuild');
  s.sweep(2500);
  assert.equal(s.decisions, 1);
  assert.equal(at(s, '10.9.9.9', 2500)!.startsWith('c '), true, 'the address is still inside the live range');
  assert.equal(at(s, '10.1.1.1', 3000), undefined);
  s.sweep(3000);
  assert.equal(s.decisions, 0);
  assert.deepEqual(s.size, { ips: 0, ranges: 0 });
});

test('views: list pages live decisions in the order received with their total; on() finds the decisions on one target; find() the one refusing a client', () => {
  const cidr = (t: string) => parseCidr(t) as Cidr;
  const s = new DecisionStore({ ipv4: 32, ipv6: 64 });
  s.replace(body([d('Ip', '192.0.2.1', { scenario: 'a' }), d('Ip', '192.0.2.2', { duration: '1s' }), d('Range', '198.51.100.0/24', { scenario: 'r' }), d('Ip', '2001:db8:1:2::5'), d('Ip', '192.0.2.1', { scenario: 'b' })]), 0);
  const targets = (l: { decisions: readonly HeldDecision[] }) => l.decisions.map((x) => x.ban.scenario);
  assert.deepEqual(s.list(0, 0, 10).total, 5);
  assert.deepEqual(targets(s.list(0, 1, 2)), ['manual', 'r']);
  // At 1 s the 1-second decision is over: no longer listed nor counted, without a sweep.
  const later = s.list(1000, 0, 10);
  assert.equal(later.total, 4);
  assert.deepEqual(targets(later), ['a', 'r', 'manual', 'b']);
  assert.deepEqual(targets(s.list(1000, 3, 10)), ['b']);
  assert.deepEqual(later.decisions.map((x) => [x.addedAt, x.expiresAt]), [[0, 3600_000], [0, 3600_000], [0, 3600_000], [0, 3600_000]]);

  assert.deepEqual(s.on(cidr('192.0.2.1'), 0).map((x) => x.ban.scenario), ['a', 'b'], 'both decisions on the address');
  assert.deepEqual(s.on(cidr('198.51.100.0/24'), 0).map((x) => x.ban.scenario), ['r']);
  assert.deepEqual(s.on(cidr('198.51.100.7'), 0), [], 'an address inside a range is not the range');
  assert.deepEqual(s.on(cidr('192.0.2.2'), 1000), [], 'expired');

  assert.equal(s.find(parseIpValue('192.0.2.1')!, 0)?.ban.scenario, 'a');
  assert.equal(s.find(parseIpValue('198.51.100.9')!, 0)?.ban.scenario, 'r');
  assert.equal(s.find(parseIpValue('::ffff:198.51.100.9')!, 0)?.ban.scenario, 'r');
  assert.equal(s.find(parseIpValue('2001:db8:1:2::')!, 0)?.ban.scenario, 'manual', 'the /64 source key of a banned IPv6 address under banPrefix ipv6: 64');
  assert.equal(s.find(parseIpValue('192.0.2.3')!, 0), undefined);
  assert.equal(s.find(parseIpValue('192.0.2.2')!, 1000), undefined);
});

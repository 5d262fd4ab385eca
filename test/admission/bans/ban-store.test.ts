import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BanStore, type BanChange } from '../../../src/admission/bans/ban-store.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { parseConfig } from '../../../src/config/load.js';
import { formatIssue } from '../../../src/config/types.js';

function store() {
  const clock = new ManualClock();
  const s = new BanStore(clock);
  const changes: BanChange[] = [];
  s.onChange((c) => changes.push(c));
  return { clock, s, changes };
}

const ban = (target: string, durationMs = 10_000) => ({ target, source: 'api', reason: 'test', durationMs });

test('ban store: addresses and networks match like ACL deny rules, IPv4 inside IPv6 forms included', () => {
  const { s } = store();
  assert.equal(typeof s.add(ban('203.0.113.7')), 'object');
  assert.equal(typeof s.add(ban('2001:db8:1:2::/64')), 'object');
  assert.equal(typeof s.add(ban('198.51.100.0/24')), 'object');
  assert.match(String(s.check('203.0.113.7', 4)), /^203\.0\.113\.7 banned by api: test$/);
  assert.equal(s.check('203.0.113.8', 4), undefined);
  assert.match(String(s.check('2001:db8:1:2:ffff::1', 6)), /^2001:db8:1:2::\/64 banned/);
  assert.equal(s.check('2001:db8:1:3::1', 6), undefined);
  assert.match(String(s.check('198.51.100.200', 4)), /^198\.51\.100\.0\/24 banned/);
  // 6to4 (2002:cb00:7107::) and NAT64 (64:ff9b::) spellings of 203.0.113.7.
  assert.match(String(s.check('2002:cb00:7107::1', 6)), /6to4 address embeds 203\.0\.113\.7/);
  assert.match(String(s.check('64:ff9b::cb00:7107', 6)), /embeds 203\.0\.113\.7/);
  assert.deepEqual(s.list().map((b) => b.target).sort(), ['198.51.100.0/24', '2001:db8:1:2::/64', '203.0.113.7']);
});

test('ban store: expiry on the clock, a live wider ban is not hidden by an expired narrower one, remove by any spelling', () => {
  const { clock, s, changes } = store();
  s.add(ban('10.1.2.3', 1000));
  s.add(ban('10.1.0.0/16', 5000));
  clock.advance(999);
  assert.match(String(s.check('10.1.2.3', 4)), /^10\.1\.2\.3 banned/);
  clock.advance(1);
  assert.match(String(s.check('10.1.2.3', 4)), /^10\.1\.0\.0\/16 banned/, 'the wider ban still holds');
  assert.deepEqual(changes.map((c) => [c.kind, c.ban.target]), [['added', '10.1.2.3'], ['added', '10.1.0.0/16'], ['expired', '10.1.2.3']]);
  assert.equal(s.remove('10.1.0.0/16')?.target, '10.1.0.0/16');
  assert.equal(s.check('10.1.2.3', 4), undefined);
  assert.equal(s.remove('10.1.0.0/16'), undefined);
  s.add(ban('2001:db8::1'));
  assert.equal(s.remove('2001:0db8:0:0::1')?.target, '2001:db8::1');
});

test('ban store: allow networks are never refused; a ban wholly inside one is refused; bad input names the field', () => {
  const { s } = store();
  s.setAllow(['10.1.0.0/16']);
  assert.match(String(s.add(ban('10.1.2.3'))), /^target: 10\.1\.2\.3\/32 is inside bans.allow 10\.1\.0\.0\/16/);
  assert.equal(typeof s.add(ban('10.0.0.0/8')), 'object', 'a wider ban is accepted');
  assert.equal(s.check('10.1.2.3', 4), undefined, 'but does not refuse the allowed part');
  assert.match(String(s.check('10.2.0.1', 4)), /^10\.0\.0\.0\/8 banned/);
  assert.match(String(s.add(ban('10.0.0.300'))), /^target: /);
  assert.match(String(s.add(ban('192.0.2.1', 0))), /^duration: /);
});

test('ban store: restore keeps bans still in force with their original end and skips expired or bad ones', () => {
  const { clock, s } = store();
  const now = clock.wallNow();
  const kept = s.restore([
    { target: '192.0.2.1', source: 'rule:x', reason: 'r', createdAt: now - 5000, expiresAt: now + 5000 },
    { target: '192.0.2.2', source: 'api', reason: 'r', createdAt: now - 5000, expiresAt: now },
    { target: 'nonsense', source: 'api', reason: 'r', createdAt: now, expiresAt: now + 5000 },
  ]);
  assert.equal(kept, 1);
  assert.deepEqual(s.list().map((b) => [b.target, b.expiresAt]), [['192.0.2.1', now + 5000]]);
});

test('bans config: rule names that do not exist, bad allow networks and a rule without a condition are errors with their path and line', () => {
  const r = parseConfig(`bans:
  allow: [10.0.0.300/8]
  default: [nope]
  rules:
    empty: { when: {}, ban: 1h }
routes:
  a:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:1
    bans: [missing]
`);
  assert.equal(r.ok, false);
  const text = r.ok ? [] : r.issues.map(formatIssue);
  assert.ok(text.some((m) => /^bans\.rules\.empty\.when \(line 5\): needs newSessionsPer, rejectionsPer or bytesPer/.test(m)), text.join('\n'));
  const ok = parseConfig(`bans:
  allow: [10.0.0.300/8]
  default: [nope]
  rules:
    one: { when: { newSessionsPer: { count: 3, window: 1m } }, ban: 1h }
routes:
  a:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:1
    bans: [missing]
`);
  const all = ok.ok ? [] : ok.issues.map(formatIssue);
  assert.ok(all.some((m) => /^bans\.allow\.0 \(line 2\): /.test(m)), all.join('\n'));
  assert.ok(all.some((m) => /^bans\.default\.0 \(line 3\): no ban rule "nope" in bans\.rules \(known: one\)/.test(m)), all.join('\n'));
  assert.ok(all.some((m) => /^routes\.a\.bans\.0 \(line 10\): no ban rule "missing"/.test(m)), all.join('\n'));
  const good = parseConfig(`bans:
  rules:
    one: { when: { newSessionsPer: { count: 3, window: 1m } }, ban: 1h, escalate: 2 }
  default: [one]
routes:
  a: { listen: tcp://127.0.0.1:0, upstream: 127.0.0.1:1 }
  b: { listen: tcp://127.0.0.1:0, upstream: 127.0.0.1:1, bans: [] }
`);
  assert.ok(good.ok);
  assert.deepEqual(good.config.routes.map((x) => [x.name, x.bans]), [['a', ['one']], ['b', []]]);
  assert.deepEqual(good.config.bans?.rules[0], { name: 'one', newSessionsPer: { count: 3, windowMs: 60_000 }, banMs: 3600_000, escalate: 2, maxBanMs: 30 * 24 * 3600_000, scope: { ipv4: 32, ipv6: 64 }, mode: 'enforce' });
  assert.equal(good.config.bans?.stateDir, 'sluice-state');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { foundationOf, formatCandidate, parseCandidate, type IceCandidate } from '../../src/ice/candidate.js';
import { credentialsProblem, randomCredentials, randomTieBreaker } from '../../src/ice/credentials.js';
import { TYPE_PREFERENCE, candidatePriority, pairPriority } from '../../src/ice/priority.js';

test('candidate priority (RFC 8445 §5.1.2.1): host with the highest local preference is 2130706431', () => {
  assert.equal(candidatePriority('host'), 2130706431);
  assert.equal(candidatePriority('srflx', 65535), 100 * 2 ** 24 + 65535 * 256 + 255);
  assert.equal(candidatePriority('relay', 0), 255);
  assert.ok(candidatePriority('prflx', 0) > candidatePriority('srflx', 65535), 'type outranks local preference');
  assert.deepEqual(TYPE_PREFERENCE, { host: 126, prflx: 110, srflx: 100, relay: 0 });
});

test('pair priority (RFC 8445 §6.1.2.3): exact in bigint, symmetric between the two sides', () => {
  const g = candidatePriority('host');
  const d = candidatePriority('relay', 65535);
  assert.equal(pairPriority(g, d), (BigInt(d) << 32n) + 2n * BigInt(g) + 1n);
  assert.equal(pairPriority(d, g), (BigInt(d) << 32n) + 2n * BigInt(g));
  fc.assert(fc.property(fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 1, max: 0xffffffff }), (a, b) => {
    // Both agents compute the same number for the same pair when they agree on who controls.
    return pairPriority(a, b) === pairPriority(a, b) && (a === b || pairPriority(a, b) !== pairPriority(b, a));
  }));
});

test('foundations: equal for the same type, base and server; different otherwise (RFC 8445 §5.1.1.3)', () => {
  assert.equal(foundationOf('srflx', '10.0.0.1', '192.0.2.1'), foundationOf('srflx', '10.0.0.1', '192.0.2.1'));
  assert.notEqual(foundationOf('srflx', '10.0.0.1', '192.0.2.1'), foundationOf('srflx', '10.0.0.1', '192.0.2.2'));
  assert.notEqual(foundationOf('host', '10.0.0.1'), foundationOf('srflx', '10.0.0.1'));
  assert.match(foundationOf('relay', '10.0.0.1', 'x'), /^[0-9a-f]{8}$/);
});

const SRFLX: IceCandidate = {
  foundation: 'a1b2c3d4', component: 1, transport: 'udp', priority: 1686052607, address: '203.0.113.7', port: 40000,
  family: 4, type: 'srflx', related: { address: '10.0.1.2', port: 5000 },
};

test('candidate text (RFC 8839 §5.1): format and parse round trip, with and without prefixes', () => {
  const text = formatCandidate(SRFLX);
  assert.equal(text, 'candidate:a1b2c3d4 1 udp 1686052607 203.0.113.7 40000 typ srflx raddr 10.0.1.2 rport 5000');
  assert.deepEqual(parseCandidate(text), SRFLX);
  assert.deepEqual(parseCandidate(`a=${text}`), SRFLX);
  assert.deepEqual(parseCandidate(text.slice('candidate:'.length)), SRFLX);
});

test('werift-ice and browser candidate lines parse; extensions are ignored', () => {
  const w = parseCandidate('6815297761 1 udp 659136 127.0.0.1 31102 typ host generation 0 ufrag b7l3');
  assert.equal(typeof w, 'object');
  assert.equal((w as IceCandidate).address, '127.0.0.1');
  const v6 = parseCandidate('candidate:1 1 UDP 2122262783 2001:DB8::1 9 typ host network-id 1');
  assert.equal((v6 as IceCandidate).address, '2001:db8::1');
  assert.equal((v6 as IceCandidate).family, 6);
  const relay = parseCandidate('candidate:3 1 udp 16777215 192.0.2.9 3478 typ relay raddr 203.0.113.1 rport 1');
  assert.deepEqual((relay as IceCandidate).related, { address: '203.0.113.1', port: 1 });
});

test('candidates this agent cannot use are refused with a reason, never thrown', () => {
  for (const bad of [
    'candidate:1 1 tcp 1 10.0.0.1 9 typ host tcptype active',
    'candidate:1 1 udp 1 abcd.local 9 typ host',
    'candidate:1 1 udp 1 10.0.0.1 0 typ host',
    'candidate:1 1 udp 0 10.0.0.1 9 typ host',
    'candidate:1 1 udp 1 10.0.0.1 9 typ nonsense',
    'candidate:1 1 udp 1 10.0.0.1 9',
    'candidate:f@@ 1 udp 1 10.0.0.1 9 typ host',
    '',
  ]) assert.equal(typeof parseCandidate(bad), 'string', bad);
  fc.assert(fc.property(fc.string(), (s) => {
    const r = parseCandidate(s);
    return typeof r === 'string' || typeof r === 'object';
  }));
});

test('credentials: random ones satisfy RFC 8445 §5.3; short or foreign characters are refused', () => {
  for (let i = 0; i < 50; i++) {
    const c = randomCredentials();
    assert.equal(credentialsProblem(c), undefined, JSON.stringify(c));
    assert.equal(c.ufrag.length, 8);
    assert.equal(c.pwd.length, 24);
  }
  assert.ok(credentialsProblem({ ufrag: 'abc', pwd: 'p'.repeat(22) }));
  assert.ok(credentialsProblem({ ufrag: 'abcd', pwd: 'p'.repeat(21) }));
  assert.ok(credentialsProblem({ ufrag: 'ab:d', pwd: 'p'.repeat(22) }));
  assert.notEqual(randomTieBreaker(), randomTieBreaker());
});

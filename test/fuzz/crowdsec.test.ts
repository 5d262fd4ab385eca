// Fuzz: the CrowdSec LAPI decision stream body (byte-mutated text and structure-mutated JSON),
// Go durations, and the decision store that applies what was parsed (fuzz.ts says how).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseGoDurationMs, parseStreamBody } from '../../src/admission/crowdsec/stream-body.js';
import { DecisionStore } from '../../src/admission/crowdsec/decision-store.js';
import { parseIpValue } from '../../src/core/ip-value.js';
import { fuzz, mutatedInputs, mutatedJson } from './fuzz.js';

const decision = (o: Record<string, unknown>) => ({ id: 1, origin: 'crowdsec', type: 'ban', scope: 'Ip', value: '192.0.2.1', duration: '3h59m58.9s', scenario: 'crowdsecurity/ssh-bf', simulated: false, until: '2026-01-01T00:00:00Z', ...o });
const BODIES = [
  { new: [decision({}), decision({ id: 2, scope: 'Range', value: '198.51.100.0/24' }), decision({ id: 3, value: '2001:db8::1', duration: '-2m0.5s' })], deleted: [decision({ id: 9 })] },
  { new: null, deleted: null },
  { new: [decision({ id: 4, type: 'captcha' }), decision({ id: 5, scope: 'Country', value: 'FR' }), decision({ scope: 'range', value: '::ffff:10.0.0.0/104', id: undefined })], deleted: [] },
  {},
];
const texts = BODIES.map((b) => Buffer.from(JSON.stringify(b)));
const PROBES = ['192.0.2.1', '198.51.100.7', '2001:db8::1', '10.0.0.1', '::1'].map((a) => parseIpValue(a)!);

function checkBody(text: string, store: DecisionStore): void {
  const r = parseStreamBody(text);
  if (typeof r === 'string') return;
  for (const b of r.added) {
    assert.equal(typeof b.key, 'string');
    assert.ok(b.remainingMs > 0, `remaining ${b.remainingMs}`);
  }
  store.apply(r, 1000);
  for (const ip of PROBES) store.match(ip, 1000);
  store.sweep(1000 + 3_600_000);
}

test('fuzz: LAPI stream bodies, byte-mutated', (t) => {
  const store = new DecisionStore();
  const stats = fuzz({
    inputs: mutatedInputs([...texts, Buffer.from('null'), Buffer.from('[]')], 128),
    run: (buf) => checkBody(buf.toString('utf8'), store),
    typedError: () => false,
    numRuns: 4000,
  });
  t.diagnostic(`crowdsec body (bytes): ${JSON.stringify(stats)}`);
});

test('fuzz: LAPI stream bodies, structure-mutated JSON', (t) => {
  const store = new DecisionStore();
  const stats = fuzz({
    inputs: fc.oneof(mutatedJson(BODIES), fc.jsonValue({ maxDepth: 3 })),
    run: (doc) => checkBody(JSON.stringify(doc) ?? 'null', store),
    typedError: () => false,
    numRuns: 4000,
  });
  t.diagnostic(`crowdsec body (json): ${JSON.stringify(stats)}`);
});

test('fuzz: Go durations', (t) => {
  const seeds = ['3h59m58.9s', '-2m0.5s', '0s', '0', '1.5ms', '250µs', '9m59.533874285s'].map((s) => Buffer.from(s));
  const stats = fuzz({
    inputs: fc.oneof(mutatedInputs(seeds, 64), fc.nat({ max: 5000 }).map((n) => Buffer.from('1'.repeat(n) + 'h'))),
    run: (buf) => {
      const ms = parseGoDurationMs(buf.toString('utf8'));
      assert.ok(ms === undefined || !Number.isNaN(ms), `NaN for ${buf.toString()}`);
    },
    typedError: () => false,
    numRuns: 3000,
  });
  t.diagnostic(`go durations: ${JSON.stringify(stats)}`);
});

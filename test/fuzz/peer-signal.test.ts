// Fuzz: what one agent reads from another through the gateway to set up a direct path: SIGNAL
// payloads (JSON validated by a schema) and the ICE candidate lines inside them (fuzz.ts says how).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodePeerSignal, encodePeerSignal } from '../../src/agent/peer-signal.js';
import { parseCandidate } from '../../src/ice/candidate.js';
import { fuzz, mutatedInputs, mutatedJson } from './fuzz.js';

const CANDIDATES = [
  'candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host',
  'a=candidate:abc+/ 1 UDP 1694498815 203.0.113.7 54321 typ srflx raddr 10.0.0.2 rport 40000 generation 0',
  'candidate:9 1 udp 16777215 2001:db8::9 3478 typ relay raddr 0.0.0.0 rport 0 network-id 1',
  'candidate:7 1 udp 1 host.local 1 typ host',
];
const attempt = '0123456789abcdef';
const key = { keyId: 7, key: `${'A'.repeat(43)}=` };
const SIGNALS = [
  encodePeerSignal({ kind: 'offer', attempt, ufrag: 'abcd', pwd: 'p'.repeat(22), ...key }),
  encodePeerSignal({ kind: 'answer', attempt, ufrag: 'efgh', pwd: 'q'.repeat(24), ...key }),
  ...CANDIDATES.map((candidate) => encodePeerSignal({ kind: 'candidate', attempt, candidate })),
  encodePeerSignal({ kind: 'end', attempt }),
  encodePeerSignal({ kind: 'close', attempt }),
];

test('fuzz: SIGNAL payloads (bytes and JSON structure) and the candidates they carry', (t) => {
  const stats = fuzz({
    inputs: fc.oneof(mutatedInputs(SIGNALS, 128), mutatedJson(SIGNALS.map((b) => JSON.parse(b.toString()))).map((d) => Buffer.from(JSON.stringify(d) ?? 'null'))),
    run: (buf) => {
      const s = decodePeerSignal(buf);
      if (typeof s === 'string') return;
      assert.equal(s.v, 1);
      if (s.kind === 'candidate') {
        const c = parseCandidate(s.candidate);
        if (typeof c !== 'string') assert.ok(c.port >= 0 && c.port <= 65_535);
      }
    },
    typedError: () => false,
    numRuns: 3000,
  });
  t.diagnostic(`peer signals: ${JSON.stringify(stats)}`);
});

test('fuzz: candidate lines', (t) => {
  const stats = fuzz({
    inputs: fc.oneof(mutatedInputs(CANDIDATES.map((c) => Buffer.from(c)), 128), fc.nat({ max: 4000 }).map((n) => Buffer.from(`candidate:1 1 udp 1 ${'1'.repeat(n)} 1 typ host`))),
    run: (buf) => {
      const c = parseCandidate(buf.toString('utf8'));
      if (typeof c !== 'string') {
        assert.ok(Number.isInteger(c.port) && c.port >= 0 && c.port <= 65_535, `port ${c.port}`);
        assert.ok(Number.isInteger(c.priority) && c.priority >= 1);
      }
    },
    typedError: () => false,
    numRuns: 4000,
  });
  t.diagnostic(`candidates: ${JSON.stringify(stats)}`);
});

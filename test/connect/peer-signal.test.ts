import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodePeerSignal, encodePeerSignal, type PeerSignalBody } from '../../src/agent/peer-signal.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const creds = { ufrag: 'abcd', pwd: 'p'.repeat(22) };

test('golden: an offer is this exact JSON, and decodes back', () => {
  const body: PeerSignalBody = { kind: 'offer', attempt: '0123456789abcdef', ...creds, keyId: 42, key: KEY };
  const bytes = encodePeerSignal(body);
  assert.equal(
    bytes.toString(),
    `{"v":1,"kind":"offer","attempt":"0123456789abcdef","ufrag":"abcd","pwd":"${'p'.repeat(22)}","keyId":42,"key":"${KEY}"}`,
  );
  assert.deepEqual(decodePeerSignal(bytes), { v: 1, ...body });
});

// Replayed inputs: each must be refused with a reason naming the field, never thrown.
const CORPUS: [string, RegExp][] = [
  ['', /not JSON/],
  ['{', /not JSON/],
  ['null', /payload/],
  ['[]', /payload/],
  ['{"v":2,"kind":"end","attempt":"0123456789abcdef"}', /^v:/],
  ['{"v":1,"kind":"launch","attempt":"0123456789abcdef"}', /kind/],
  ['{"v":1,"kind":"end","attempt":"../../etc"}', /^attempt:/],
  ['{"v":1,"kind":"end","attempt":"0123456789abcdef","extra":1}', /extra|Unrecognized|unknown/i],
  ['{"v":1,"kind":"candidate","attempt":"0123456789abcdef","candidate":""}', /^candidate:/],
  [`{"v":1,"kind":"answer","attempt":"0123456789abcdef","ufrag":"abcd","pwd":"short","keyId":1,"key":"${KEY}"}`, /^pwd:/],
  [`{"v":1,"kind":"answer","attempt":"0123456789abcdef","ufrag":"abcd","pwd":"${'p'.repeat(22)}","keyId":0,"key":"${KEY}"}`, /^keyId:/],
  [`{"v":1,"kind":"answer","attempt":"0123456789abcdef","ufrag":"abcd","pwd":"${'p'.repeat(22)}","keyId":1,"key":"AAAA"}`, /^key:/],
  ['{"__proto__":{"kind":"end"},"v":1,"attempt":"0123456789abcdef"}', /kind/],
];

test('corpus: bad signals are refused with a reason, never thrown', () => {
  for (const [text, reason] of CORPUS) {
    const r = decodePeerSignal(Buffer.from(text));
    assert.equal(typeof r, 'string', text);
    assert.match(r as string, reason, text);
  }
});

test('property: any bytes give a signal or a reason, never an exception', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const r = decodePeerSignal(Buffer.from(bytes));
      assert.ok(typeof r === 'string' || typeof r === 'object');
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 3 }), (v) => {
      const r = decodePeerSignal(Buffer.from(JSON.stringify(v) ?? ''));
      assert.ok(typeof r === 'string' || (typeof r === 'object' && r.v === 1));
    }),
    { numRuns: 2000 },
  );
});

test('property: every well-formed signal round-trips', () => {
  const attempt = fc.stringMatching(/^[0-9a-f]{8,32}$/);
  const body = fc.oneof(
    fc.record({ kind: fc.constant('end' as const), attempt }),
    fc.record({ kind: fc.constant('close' as const), attempt }),
    fc.record({ kind: fc.constant('candidate' as const), attempt, candidate: fc.string({ minLength: 1, maxLength: 100 }) }),
    fc.record({
      kind: fc.constantFrom('offer' as const, 'answer' as const), attempt, ufrag: fc.string({ minLength: 4, maxLength: 32 }),
      pwd: fc.string({ minLength: 22, maxLength: 64 }), keyId: fc.integer({ min: 1, max: 0xffff_ffff }),
      key: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64')),
    }),
  );
  fc.assert(fc.property(body, (b) => assert.deepEqual(decodePeerSignal(encodePeerSignal(b as PeerSignalBody)), { v: 1, ...b })), { numRuns: 1000 });
});

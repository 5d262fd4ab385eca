// Fuzz: ICE connectivity checks (RFC 8445 §7.3) as the responder reads them: mutated check
// requests, and requests built from mutated attributes and then correctly signed, so the bytes
// reach every attribute read that comes after the integrity check (fuzz.ts says how).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  StunAttr,
  StunMethod,
  decodeStunDatagram,
  encodeStunMessage,
  shortTermKey,
  stunMessage,
} from '../../src/protocol/stun/index.js';
import { checkResponseAuthentic, encodeCheckError, encodeCheckRequest, encodeCheckSuccess, readCheckRequest } from '../../src/ice/check-message.js';
import { fuzz, hasCode, mutatedInputs } from './fuzz.js';

const LOCAL = { ufrag: 'locl', pwd: 'local-password-0123456789' };
const REMOTE = { ufrag: 'remt', pwd: 'remote-password-012345678' };
const TID = Buffer.alloc(12, 3);

const requests = [true, false].flatMap((useCandidate) =>
  (['controlling', 'controlled'] as const).map((role) =>
    encodeCheckRequest({ localUfrag: REMOTE.ufrag, remoteUfrag: LOCAL.ufrag, remotePwd: LOCAL.pwd, priority: 0x6e0001ff, role, tieBreaker: 0x932ff9b151263b36n, useCandidate }, TID),
  ),
);
const responses = [
  encodeCheckSuccess(decodeStunDatagram(requests[0]!)!, { address: '192.0.2.1', port: 32853, family: 4 }, REMOTE.pwd),
  encodeCheckError(decodeStunDatagram(requests[0]!)!, 487, REMOTE.pwd),
  encodeCheckError(decodeStunDatagram(requests[0]!)!, 420, REMOTE.pwd, [0x0001, 0x7fff]),
];
const corpus = [...requests, ...responses];
const stunTyped = (err: unknown) => hasCode(err, 'SLUICE_ERR_STUN_INVALID');

const verdicts: Record<string, number> = {};

function answerLikeTheResponder(buf: Buffer): void {
  let msg;
  try {
    msg = decodeStunDatagram(buf);
  } catch (err) {
    assert.ok(stunTyped(err), String(err));
    return; // the agent drops what does not decode
  }
  if (!msg) return;
  checkResponseAuthentic(msg, REMOTE.pwd);
  if (msg.cls !== 'request') return;
  const v = readCheckRequest(msg, LOCAL.ufrag, LOCAL.pwd);
  const k = v.kind === 'reject' ? `reject-${v.code}` : v.kind;
  verdicts[k] = (verdicts[k] ?? 0) + 1;
  if (v.kind === 'reject') {
    const out = encodeCheckError(msg, v.code, LOCAL.pwd, v.unknown);
    assert.ok(out.length <= 548, `a ${out.length}-byte error answer`);
  } else if (v.kind === 'check') {
    assert.ok(Number.isInteger(v.priority) && v.priority >= 0);
    encodeCheckSuccess(msg, { address: '192.0.2.1', port: 1, family: 4 }, LOCAL.pwd);
  }
}

test('fuzz: mutated check requests and responses', (t) => {
  const stats = fuzz({ inputs: mutatedInputs(corpus), run: answerLikeTheResponder, typedError: () => false, numRuns: 4000 });
  t.diagnostic(`ice checks (mutated bytes): ${JSON.stringify(stats)}`);
});

const ICE_TYPES = [StunAttr.Username, StunAttr.Priority, StunAttr.IceControlling, StunAttr.IceControlled, StunAttr.UseCandidate, 0x0001, 0x7fff, 0x8022];
const value = fc.oneof(
  fc.uint8Array({ maxLength: 12 }).map((u) => Buffer.from(u)),
  fc.constantFrom(Buffer.from(`${LOCAL.ufrag}:${REMOTE.ufrag}`), Buffer.from(`${LOCAL.ufrag}:`), Buffer.from(':'), Buffer.from([0xc3, 0x28])),
  fc.nat({ max: 8 }).map((n) => Buffer.alloc(n, 0xff)),
  // well-formed PRIORITY, tie-breaker and flag values, so some checks pass and reach the later reads
  { weight: 4, arbitrary: fc.constantFrom(Buffer.alloc(4, 1), Buffer.alloc(8, 2), Buffer.alloc(0)) },
);
const signedRequest = fc
  .tuple(
    fc.array(fc.record({ type: fc.constantFrom(...ICE_TYPES), value }), { maxLength: 8 }),
    fc.boolean(),
  )
  .map(([attrs, withUsername]) => {
    // Mostly a USERNAME for us first, so the check gets past "not mine" to the integrity and beyond.
    const all = withUsername ? [{ type: StunAttr.Username, value: Buffer.from(`${LOCAL.ufrag}:${REMOTE.ufrag}`) }, ...attrs] : attrs;
    return encodeStunMessage(stunMessage('request', StunMethod.Binding, TID, all), { integrityKey: shortTermKey(LOCAL.pwd), fingerprint: true });
  });

test('fuzz: correctly signed checks whose attributes are malformed', (t) => {
  for (const k of Object.keys(verdicts)) delete verdicts[k];
  const stats = fuzz({ inputs: signedRequest, run: answerLikeTheResponder, typedError: () => false, numRuns: 3000 });
  t.diagnostic(`ice checks (signed, malformed attributes): ${JSON.stringify(stats)} verdicts ${JSON.stringify(verdicts)}`);
  // The generator reaches past the integrity check: accepted checks, 400s and 420s all occur.
  for (const k of ['check', 'reject-400', 'reject-420', 'not-mine']) assert.ok((verdicts[k] ?? 0) > 0, `no ${k} verdict in ${JSON.stringify(verdicts)}`);
});

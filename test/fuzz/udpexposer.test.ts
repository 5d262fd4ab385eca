// Fuzz: udpexposer frames and password-mode tokens (MAC-checked, and re-signed so mutated claims
// reach the JSON and claims parsers), and the server's datagram handler (fuzz.ts says how).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  classifyServerDatagram,
  decodeFrame,
  decodeReplyClaims,
  decodeRequestClaims,
  looksLikeToken,
  signToken,
  verifyReplyToken,
  verifyRequestToken,
  verifyToken,
  UdpexposerKey,
} from '../../src/protocol/udpexposer/index.js';
import type { WireVectors } from '../protocol/udpexposer/helpers.js';
import { CLIENT, EVIL, recordingServer } from '../udpexposer/helpers.js';
import { fuzz, hexBytes, hexCorpus, hexStringsIn, mutatedInputs, vectorText } from './fuzz.js';

const wire = JSON.parse(vectorText('udpexposer/wire.json')) as WireVectors;
const vectorKey = UdpexposerKey.fromBytes(Buffer.from(wire.password_mode.hmac_key_hex, 'hex'));
const pm = wire.password_mode;
const tokens = [pm.initial_request, pm.retry_reply, pm.registered_reply, pm.echo_request_example, pm.stats_request]
  .flatMap((v) => (v.token ? [Buffer.from(v.token, 'ascii')] : []));
const claims = [pm.initial_request, pm.retry_reply, pm.registered_reply, pm.echo_request_example, pm.stats_request].map((v) => Buffer.from(v.claims_json, 'utf8'));
const corpus = [
  ...tokens,
  ...claims,
  ...hexStringsIn(wire),
  ...hexCorpus('test/protocol/udpexposer/corpus'),
  hexBytes('0001'),
  Buffer.alloc(0),
];

test('fuzz: udpexposer frames and tokens under the vector key', (t) => {
  assert.ok(tokens.length >= 4 && corpus.length >= 30, `${tokens.length} tokens, ${corpus.length} corpus entries`);
  const stats = fuzz({
    inputs: mutatedInputs(corpus),
    run: (buf) => {
      const f = decodeFrame(buf);
      if (f.kind === 'ok') assert.ok(f.value.payload.length === buf.length - 2);
      for (const pw of [false, true]) assert.ok(['keepalive', 'token', 'data'].includes(classifyServerDatagram(buf, pw)));
      looksLikeToken(buf);
      for (const r of [verifyToken(buf, vectorKey), verifyRequestToken(buf, vectorKey), verifyReplyToken(buf, vectorKey)]) {
        if (!r.ok) assert.equal(typeof r.reason, 'string');
      }
    },
    typedError: () => false,
    numRuns: 5000,
  });
  t.diagnostic(`udpexposer frames/tokens: ${JSON.stringify(stats)}`);
});

test('fuzz: mutated claims, correctly signed, reach the JSON and claims parsers', (t) => {
  const stats = fuzz({
    inputs: mutatedInputs(claims, 96),
    run: (raw) => {
      const text = raw.toString('utf8');
      for (const r of [decodeRequestClaims(text), decodeReplyClaims(text)]) if (!r.ok) assert.equal(typeof r.why, 'string');
      const token = Buffer.from(signToken(text, vectorKey), 'ascii');
      for (const r of [verifyRequestToken(token, vectorKey), verifyReplyToken(token, vectorKey)]) if (!r.ok) assert.equal(typeof r.reason, 'string');
    },
    typedError: () => false,
    numRuns: 4000,
  });
  t.diagnostic(`udpexposer claims: ${JSON.stringify(stats)}`);
});

test('fuzz: the udpexposer server handles any datagram from the client or a stranger without throwing', (t) => {
  const servers = [recordingServer({}), recordingServer({ key: vectorKey })];
  const stats = fuzz({
    inputs: fc.tuple(mutatedInputs(corpus), fc.constantFrom(CLIENT, EVIL), fc.nat({ max: 1 })),
    run: ([buf, from, which]) => {
      const s = servers[which]!;
      s.core.handleDatagram(buf, from.address, from.port);
      s.take();
    },
    typedError: () => false,
    numRuns: 3000,
  });
  t.diagnostic(`udpexposer server: ${JSON.stringify(stats)}`);
});

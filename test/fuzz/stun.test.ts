// Fuzz: STUN messages and attributes, the RFC 7983 demultiplexer, TURN ChannelData, and the
// gateway's Binding server (fuzz.ts says how).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ATTRIBUTE_CODECS,
  classifyDatagram,
  decodeStunDatagram,
  decodeStunMessage,
  integrityAlgorithmOf,
  verifyIntegrity,
  type DecodedStunMessage,
} from '../../src/protocol/stun/index.js';
import { decodeChannelData } from '../../src/turn/channel-data.js';
import { StunBindingServer } from '../../src/gateway/stun-server.js';
import { fuzz, hasCode, hexBytes, hexStringsIn, mutatedInputs, vectorText } from './fuzz.js';

const corpus = [
  ...['rfc5769/2.1-sample-request.hex', 'rfc5769/2.2-sample-ipv4-response.hex', 'rfc5769/2.3-sample-ipv6-response.hex', 'rfc5769/2.4-sample-request-long-term.hex',
    'rfc8489/B.1-as-printed-in-rfc.hex', 'rfc8489/B.1-sample-request-long-term-sha256-errata.hex'].map((f) => hexBytes(vectorText(f))),
  ...hexStringsIn(JSON.parse(vectorText('turn/coturn-session.json'))),
];
const typed = (err: unknown) => hasCode(err, 'SLUICE_ERR_STUN_INVALID');
const KEY = Buffer.alloc(20, 7);

/** Every attribute decoded with its codec: each either decodes or throws the typed error. */
function decodeAll(msg: DecodedStunMessage): void {
  for (const a of msg.attributes) {
    const codec = ATTRIBUTE_CODECS.get(a.type);
    if (!codec) continue;
    try {
      codec.decode(a.value, msg.transactionId);
    } catch (err) {
      assert.ok(typed(err), `${codec.name}: ${String(err)}`);
    }
  }
  for (const alg of ['sha1', 'sha256'] as const) assert.ok(['ok', 'mismatch', 'absent'].includes(verifyIntegrity(msg, KEY, alg)));
  integrityAlgorithmOf(msg);
}

test('fuzz: STUN message decoding (stream and datagram framing) and every attribute codec', (t) => {
  assert.ok(corpus.length >= 10, `${corpus.length} corpus entries`);
  const stats = fuzz({
    inputs: mutatedInputs(corpus),
    run: (buf) => {
      const kind = classifyDatagram(buf);
      assert.ok(['stun', 'channel-data', 'application'].includes(kind));
      const cd = decodeChannelData(buf);
      if (cd) assert.ok(cd.data.length <= buf.length - 4);
      let streamed: ReturnType<typeof decodeStunMessage> | undefined;
      try {
        streamed = decodeStunMessage(buf);
      } catch (err) {
        assert.ok(typed(err), String(err));
      }
      if (streamed?.kind === 'ok') {
        assert.ok(streamed.length >= 20 && streamed.length <= buf.length);
        decodeAll(streamed.value);
      }
      const msg = decodeStunDatagram(buf);
      if (msg) decodeAll(msg);
    },
    typedError: typed,
    numRuns: 6000,
  });
  t.diagnostic(`stun: ${JSON.stringify(stats)}`);
});

test('fuzz: the gateway STUN Binding server answers or drops, never throws, never more than the request plus one address', (t) => {
  let sent = 0;
  let lastOut = 0;
  const server = new StunBindingServer((buf) => {
    sent++;
    lastOut = buf.length;
  });
  const stats = fuzz({
    inputs: fc.tuple(mutatedInputs(corpus), fc.constantFrom('127.0.0.1', '::1', '2001:db8::1', 'not an address')),
    run: ([buf, address]) => {
      const before = sent;
      const out = server.handleDatagram(buf, { address, port: 3478 });
      assert.ok(['answered', 'error-response', 'dropped', 'pass'].includes(out.kind), JSON.stringify(out));
      if (sent > before) assert.ok(lastOut <= buf.length + 32, `${lastOut} bytes out for ${buf.length} in`);
    },
    typedError: () => false,
    numRuns: 3000,
  });
  t.diagnostic(`stun server: ${JSON.stringify(stats)}`);
});

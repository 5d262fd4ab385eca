// Fuzz: PROXY protocol v1/v2 on TCP (whole and streamed) and UDP (fuzz.ts says how).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeProxyDatagram,
  decodeProxyHeader,
  isProxyHeaderError,
  type ProxyDecodeOptions,
} from '../../src/protocol/proxy-protocol/index.js';
import { UdpProxyHeaders } from '../../src/session/udp-proxy-header.js';
import { once } from 'node:events';
import net from 'node:net';
import { startNode } from '../helpers/node.js';
import { tcpServer } from '../helpers/net.js';
import { fcSettings, fuzz, hexBytes, hexCorpus, mutatedInputs, vectorText } from './fuzz.js';

const corpus = [
  ...(['v1', 'v2'] as const).flatMap((v) => (JSON.parse(vectorText(`proxy-protocol/${v}.json`)) as { vectors: { hex: string }[] }).vectors.map((x) => hexBytes(x.hex))),
  ...hexCorpus('test/protocol/proxy-protocol/corpus'),
];
const typed = (err: unknown) => isProxyHeaderError(err) && err.code === 'SLUICE_ERR_PROXY_HEADER_INVALID';
const OPTIONS: ProxyDecodeOptions[] = [
  {},
  { final: true },
  { validateTlvs: false, maxV2HeaderBytes: 16 + 65_535 },
  { version: 1, final: true },
  { version: 2, maxV2HeaderBytes: 16 },
];

function checkResult(buf: Buffer, r: ReturnType<typeof decodeProxyHeader>, final: boolean): void {
  if (r.kind === 'need-more') {
    assert.ok(!final, 'need-more with final');
    return;
  }
  assert.ok(r.length > 0 && r.length <= buf.length, `header length ${r.length} of ${buf.length} bytes`);
}

test('fuzz: decodeProxyHeader (TCP) under every option set, whole input', (t) => {
  assert.ok(corpus.length >= 100, `${corpus.length} corpus entries`);
  const stats = fuzz({
    inputs: fc.tuple(mutatedInputs(corpus), fc.constantFrom(...OPTIONS)),
    run: ([buf, o]) => checkResult(buf, decodeProxyHeader(buf, o), o.final === true),
    typedError: typed,
    numRuns: 6000,
  });
  t.diagnostic(`decodeProxyHeader: ${JSON.stringify(stats)}`);
});

test('fuzz: decodeProxyHeader (TCP) streamed: a prefix never contradicts the whole', (t) => {
  const stats = fuzz({
    inputs: fc.tuple(mutatedInputs(corpus), fc.nat()),
    run: ([buf, cut]) => {
      const at = buf.length === 0 ? 0 : cut % buf.length;
      let prefix: ReturnType<typeof decodeProxyHeader>;
      try {
        prefix = decodeProxyHeader(buf.subarray(0, at));
      } catch (err) {
        // A prefix that is already wrong: the whole input is wrong too.
        assert.ok(typed(err));
        assert.throws(() => decodeProxyHeader(buf, { final: true }), typed);
        throw err;
      }
      if (prefix.kind === 'ok') {
        const whole = decodeProxyHeader(buf);
        assert.equal(whole.kind, 'ok');
        if (whole.kind === 'ok') assert.equal(whole.length, prefix.length);
      }
    },
    typedError: typed,
    numRuns: 3000,
  });
  t.diagnostic(`decodeProxyHeader streamed: ${JSON.stringify(stats)}`);
});

test('fuzz: PROXY v2 on UDP: decodeProxyDatagram and the route classifier', (t) => {
  const udp = new UdpProxyHeaders({ accept: ['127.0.0.0/8'], send: undefined, udp: 'every', maxHeaderBytes: 4096 });
  const stats = fuzz({
    inputs: mutatedInputs(corpus),
    run: (buf) => {
      const verdict = udp.inbound(buf, '127.0.0.1');
      assert.ok(verdict === null || typeof verdict === 'string' || (verdict.offset > 0 && verdict.offset <= buf.length), `verdict ${JSON.stringify(verdict)}`);
      const plain = udp.inbound(buf, '192.0.2.1');
      assert.ok(plain === null || plain === 'proxy-header-untrusted');
      const r = decodeProxyDatagram(buf);
      assert.ok(r.length >= 16 && r.length <= buf.length);
    },
    typedError: typed,
    numRuns: 4000,
  });
  t.diagnostic(`decodeProxyDatagram: ${JSON.stringify(stats)}`);
});

test('fuzz: a TCP route reading PROXY headers from real sockets, mutated headers in arbitrary chunks', async (t) => {
  const up = await tcpServer(t, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  const n = await startNode(
    t,
    `
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [127.0.0.1/32], headerTimeout: 1s }
`,
  );
  const { seed } = fcSettings(0);
  // Half the inputs unmutated corpus entries, so accepted headers are read in chunks too.
  const inputs = fc.oneof(mutatedInputs(corpus), fc.constantFrom(...corpus));
  const cases = fc.sample(fc.tuple(inputs, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 6 })), { seed, numRuns: 150 });
  let relayed = 0;
  let refused = 0;
  for (const [buf, cuts] of cases) {
    const s = net.connect({ host: '127.0.0.1', port: n.port('web'), allowHalfOpen: true });
    s.on('error', () => {});
    await once(s, 'connect');
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    const closed = new Promise((r) => s.once('close', r));
    let at = 0;
    for (let i = 0; at < buf.length; i++) {
      s.write(buf.subarray(at, at + cuts[i % cuts.length]!));
      at += cuts[i % cuts.length]!;
    }
    s.end();
    await closed;
    const r = (() => {
      try {
        return decodeProxyHeader(buf, { final: true });
      } catch {
        return undefined;
      }
    })();
    if (r?.kind === 'ok') {
      // Accepted: exactly the bytes after the header came back through the upstream.
      assert.deepEqual(Buffer.concat(got), buf.subarray(r.length));
      relayed++;
    } else {
      assert.equal(Buffer.concat(got).length, 0, 'nothing relayed for a refused header');
      refused++;
    }
  }
  // Still serving.
  const s = net.connect({ host: '127.0.0.1', port: n.port('web'), allowHalfOpen: true });
  s.on('error', () => {});
  s.end(Buffer.concat([hexBytes('50524f58592054435034203139322e302e322e31203139322e302e322e32203120320d0a'), Buffer.from('ok')]));
  const [back] = (await once(s, 'data')) as Buffer[];
  assert.equal(back!.toString(), 'ok');
  s.destroy();
  t.diagnostic(`route over sockets: ${cases.length} connections, ${relayed} relayed, ${refused} refused`);
  assert.ok(relayed > 0 && refused > 0);
});

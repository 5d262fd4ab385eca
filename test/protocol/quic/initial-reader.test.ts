import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { QUIC_V1, QUIC_V2, clientInitialKeys, clientInitialSecret, quicVersionParams } from '../../../src/protocol/quic/initial-keys.js';
import { openInitial, readLongHeader } from '../../../src/protocol/quic/initial-packet.js';
import { MAX_INITIAL_PACKETS, QuicInitialReader, type QuicHelloStep } from '../../../src/protocol/quic/initial-reader.js';
import { parseClientHelloMessage } from '../../../src/protocol/tls/client-hello.js';
import { clientHelloMessage, recordedHellos } from '../tls/hello-builder.js';
import { RFC_CRYPTO_FRAME, RFC_DCID, RFC_PADDING, V1_CLIENT, V2_CLIENT } from './fixtures/rfc-vectors.js';
import { cryptoFrame, sealInitial, stripRecords } from './initial-builder.js';

const hex = (s: string) => Buffer.from(s, 'hex');
const dcid = hex(RFC_DCID);

function done(step: QuicHelloStep) {
  assert.equal(step.kind, 'done', JSON.stringify(step));
  return (step as Extract<QuicHelloStep, { kind: 'done' }>).quic;
}

function failed(step: QuicHelloStep): string {
  assert.equal(step.kind, 'error', JSON.stringify(step));
  return (step as Extract<QuicHelloStep, { kind: 'error' }>).reason;
}

for (const [name, version, v] of [['v1 (RFC 9001 A.1)', QUIC_V1, V1_CLIENT], ['v2 (RFC 9369 A.1)', QUIC_V2, V2_CLIENT]] as const) {
  test(`client Initial keys ${name}`, () => {
    const params = quicVersionParams(version)!;
    assert.equal(clientInitialSecret(params, dcid).toString('hex'), v.secret);
    const keys = clientInitialKeys(params, dcid);
    assert.equal(keys.key.toString('hex'), v.key);
    assert.equal(keys.iv.toString('hex'), v.iv);
    assert.equal(keys.hp.toString('hex'), v.hp);
  });
}

for (const [name, version, v] of [['v1 (RFC 9001 A.2)', QUIC_V1, V1_CLIENT], ['v2 (RFC 9369 A.2)', QUIC_V2, V2_CLIENT]] as const) {
  test(`the RFC's protected client Initial ${name} opens to the exact CRYPTO frame and names example.com`, () => {
    const packet = hex(v.packet);
    assert.equal(packet.length, 1200);
    const h = readLongHeader(packet, 0);
    assert.ok(typeof h !== 'string', String(h));
    assert.equal(h.version, version);
    assert.equal(h.initial, true);
    assert.equal(h.dcid.toString('hex'), RFC_DCID);
    assert.equal(h.scid.length, 0);
    assert.equal(h.end, 1200);
    const opened = openInitial(packet, h, clientInitialKeys(h.params, h.dcid));
    assert.ok(typeof opened !== 'string', String(opened));
    assert.equal(opened.packetNumber, 2);
    assert.deepEqual(opened.payload, Buffer.concat([hex(RFC_CRYPTO_FRAME), Buffer.alloc(RFC_PADDING)]));
    const q = done(new QuicInitialReader().push(packet));
    assert.equal(q.hello.serverName, 'example.com');
    assert.deepEqual(q.hello.alpn, ['alpn']);
    assert.equal(q.version, version);
    assert.equal(q.dcid.toString('hex'), RFC_DCID);
  });

  test(`the test builder seals the RFC's plaintext into the RFC's protected bytes ${name}`, () => {
    const payload = Buffer.concat([hex(RFC_CRYPTO_FRAME), Buffer.alloc(RFC_PADDING)]);
    const sealed = sealInitial({ version, dcid, packetNumber: 2, payload });
    assert.equal(sealed.toString('hex'), v.packet);
  });
}

test('one damaged byte anywhere in the RFC packet is refused, never thrown', () => {
  const packet = hex(V1_CLIENT.packet);
  for (const at of [0, 5, 9, 17, 18, 22, 100, 600, 1199]) {
    const bad = Buffer.from(packet);
    bad[at]! ^= 0x01;
    const step = new QuicInitialReader().push(bad);
    assert.equal(step.kind, 'error', `byte ${at}`);
  }
});

const chromium = stripRecords(recordedHellos().get('chromium')!);

function padTo(payload: Buffer, size: number): Buffer {
  return payload.length >= size ? payload : Buffer.concat([payload, Buffer.alloc(size - payload.length)]);
}

test("Chromium's recorded ClientHello over two Initial packets in two datagrams, second first", () => {
  assert.ok(chromium.length > 1200, `${chromium.length}`);
  assert.equal(typeof parseClientHelloMessage(chromium), 'object');
  const cut = 1000;
  const p0 = sealInitial({ version: QUIC_V1, dcid, packetNumber: 0, payload: padTo(cryptoFrame(0, chromium.subarray(0, cut)), 1150) });
  const p1 = sealInitial({ version: QUIC_V1, dcid, packetNumber: 1, payload: padTo(cryptoFrame(cut, chromium.subarray(cut)), 1150) });
  const r = new QuicInitialReader();
  assert.equal(r.push(p0).kind, 'need-more');
  const q = done(r.push(p1));
  assert.equal(q.hello.serverName, parseName(chromium));
  const rev = new QuicInitialReader();
  // The second packet alone cannot be the first (its stream starts at 1000) but is accepted as an Initial.
  assert.equal(rev.push(p1).kind, 'need-more');
  assert.equal(done(rev.push(p0)).hello.serverName, parseName(chromium));
});

function parseName(hs: Buffer): string | undefined {
  const p = parseClientHelloMessage(hs);
  assert.ok(typeof p === 'object');
  return p.serverName;
}

test('coalesced Initials in one datagram, a 0-RTT packet after them passed over', () => {
  const hello = clientHelloMessage({ serverName: 'a.example.org', alpn: ['h3'] });
  const a = sealInitial({ version: QUIC_V2, dcid, scid: hex('0102'), packetNumber: 0, pnLength: 1, payload: cryptoFrame(40, hello.subarray(40)) });
  const b = sealInitial({ version: QUIC_V2, dcid, scid: hex('0102'), packetNumber: 1, pnLength: 2, payload: Buffer.concat([Buffer.from([0x01]), cryptoFrame(0, hello.subarray(0, 40)), Buffer.alloc(30)]) });
  // A 0-RTT long header (v2 type 0b10) with a length; its contents are never opened.
  const zeroRtt = Buffer.concat([Buffer.from([0xe0 | 0x03]), hex('6b3343cf'), Buffer.from([8]), dcid, Buffer.from([2]), hex('0102'), Buffer.from([0x40, 24]), Buffer.alloc(24, 0xaa)]);
  const q = done(new QuicInitialReader().push(Buffer.concat([a, b, zeroRtt])));
  assert.equal(q.hello.serverName, 'a.example.org');
  assert.deepEqual(q.hello.alpn, ['h3']);
  assert.equal(q.scid.toString('hex'), '0102');
});

test('ACK, PING and CONNECTION_CLOSE frames are walked; a STREAM frame in an Initial is refused', () => {
  const hello = clientHelloMessage({ serverName: 'x.test' });
  const ack = hex('0302000100' + '01' + '0000' + '000000'); // ACK_ECN largest 2, delay 0, 1 range, first 0, gap/len, ECN counts
  const close = Buffer.concat([hex('1c00000474657374')]);
  const ok = sealInitial({ version: QUIC_V1, dcid, packetNumber: 0, payload: Buffer.concat([ack, Buffer.from([1]), cryptoFrame(0, hello), close]) });
  assert.equal(done(new QuicInitialReader().push(ok)).hello.serverName, 'x.test');
  const stream = sealInitial({ version: QUIC_V1, dcid, packetNumber: 0, payload: Buffer.concat([hex('0800'), cryptoFrame(0, hello)]) });
  assert.equal(failed(new QuicInitialReader().push(stream)), 'bad-frame');
});

test('refusals name the reason', () => {
  assert.equal(failed(new QuicInitialReader().push(hex('160301020001'))), 'not-quic'); // a TLS record over UDP
  assert.equal(failed(new QuicInitialReader().push(Buffer.from('GET / HTTP/1.1\r\n'))), 'short-header'); // 'G' has the short-header bits
  assert.equal(failed(new QuicInitialReader().push(hex('4001020304050607080900'))), 'short-header');
  assert.equal(failed(new QuicInitialReader().push(hex('c0ff00001d08' + RFC_DCID + '00000410101010'))), 'unsupported-version');
  assert.equal(failed(new QuicInitialReader().push(hex('c00000000008' + RFC_DCID + '00000410101010'))), 'unsupported-version');
  const handshake = Buffer.concat([hex('e000000001'), Buffer.from([8]), dcid, Buffer.from([0]), Buffer.from([0x40, 20]), Buffer.alloc(20)]);
  assert.equal(failed(new QuicInitialReader().push(handshake)), 'not-initial');
  const wrongKeys = Buffer.from(hex(V1_CLIENT.packet));
  wrongKeys[6] ^= 0xff; // a different DCID derives other keys
  assert.equal(failed(new QuicInitialReader().push(wrongKeys)), 'decrypt-failed');
  const notHello = sealInitial({ version: QUIC_V1, dcid, packetNumber: 0, payload: cryptoFrame(0, hex('020000040303aaaa')) });
  assert.equal(failed(new QuicInitialReader().push(notHello)), 'not-client-hello');
  const far = sealInitial({ version: QUIC_V1, dcid, packetNumber: 0, payload: cryptoFrame(16_380, Buffer.alloc(10)) });
  assert.equal(failed(new QuicInitialReader().push(far)), 'too-large');
});

test('a client that never completes its ClientHello is cut off after MAX_INITIAL_PACKETS packets', () => {
  const hello = clientHelloMessage({ serverName: 'slow.test' });
  const r = new QuicInitialReader();
  let step: QuicHelloStep = { kind: 'need-more' };
  let n = 0;
  while (step.kind === 'need-more' && n < 100) {
    step = r.push(sealInitial({ version: QUIC_V1, dcid, packetNumber: n, payload: cryptoFrame(1, hello.subarray(1, 2)) }));
    n++;
  }
  assert.equal(failed(step), 'too-many-packets');
  assert.equal(n, MAX_INITIAL_PACKETS + 1);
});

test('property: any split of the CRYPTO stream into frames and packets, in any order, gives the same server name', () => {
  const hello = chromium;
  const want = parseName(hello);
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 1, max: hello.length - 1 }), { maxLength: 30 }),
      fc.integer({ min: 1, max: 6 }),
      fc.integer(),
      fc.boolean(),
      (cuts, framesPerPacket, seed, coalesce) => {
        const edges = [0, ...cuts.sort((a, b) => a - b), hello.length];
        const frames: Buffer[] = [];
        for (let i = 0; i + 1 < edges.length; i++) frames.push(cryptoFrame(edges[i]!, hello.subarray(edges[i]!, edges[i + 1]!)));
        shuffle(frames, seed);
        const packets: Buffer[] = [];
        for (let i = 0; i < frames.length; i += framesPerPacket) {
          packets.push(sealInitial({ version: seed % 2 === 0 ? QUIC_V1 : QUIC_V2, dcid, packetNumber: packets.length, payload: Buffer.concat(frames.slice(i, i + framesPerPacket)) }));
        }
        // Every packet was sealed with one version: the reader follows the first one's.
        const datagrams = coalesce ? chunk(packets, 3).map((p) => Buffer.concat(p)) : packets;
        const r = new QuicInitialReader();
        let step: QuicHelloStep = { kind: 'need-more' };
        for (const d of datagrams) step = r.push(d);
        assert.equal(done(step).hello.serverName, want);
      },
    ),
    { numRuns: 150 },
  );
});

test('property: random and mutated datagrams never throw and always finish', () => {
  const good = hex(V1_CLIENT.packet);
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 1500 }), fc.tuple(fc.integer({ min: 0, max: 1199 }), fc.integer({ min: 1, max: 255 }), fc.integer({ min: 0, max: 1200 }))), { minLength: 1, maxLength: 40 }),
      (inputs) => {
        const r = new QuicInitialReader();
        for (const input of inputs) {
          let d: Buffer;
          if (input instanceof Uint8Array) d = Buffer.from(input);
          else {
            const [at, x, len] = input;
            d = Buffer.from(good.subarray(0, Math.max(at + 1, len)));
            d[at]! ^= x;
          }
          const step = r.push(d);
          assert.ok(step.kind === 'need-more' || step.kind === 'error' || step.kind === 'done');
        }
      },
    ),
    { numRuns: 300 },
  );
});

function shuffle<T>(a: T[], seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

function chunk<T>(a: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < a.length; i += n) out.push(a.slice(i, i + n));
  return out;
}

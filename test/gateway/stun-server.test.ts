import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StunBindingServer, stunRoute } from '../../src/gateway/stun-server.js';
import { DatagramDemux } from '../../src/gateway/demux.js';
import {
  ErrorCode, MAGIC_COOKIE, Priority, Software, StunAttr, StunMethod, UnknownAttributes, Username, XorMappedAddress, attr,
  decodeStunDatagram, encodeStunMessage, getAttribute, hasAttribute, randomTransactionId, shortTermKey, stunMessage,
  type DecodedStunMessage, type StunAttribute,
} from '../../src/protocol/stun/index.js';

const V4 = { address: '198.51.100.7', port: 40000 };
const V6 = { address: '2001:db8::7', port: 40001 };

function setup(opts = {}) {
  const sent: { buf: Buffer; port: number; address: string }[] = [];
  const server = new StunBindingServer((buf, port, address) => void sent.push({ buf, port, address }), opts);
  const reply = (): DecodedStunMessage => {
    assert.equal(sent.length, 1, 'exactly one response');
    return decodeStunDatagram(sent[0]!.buf)!;
  };
  return { server, sent, reply };
}

const binding = (attrs: (StunAttribute | ReturnType<typeof attr>)[] = [], fingerprint = false, tid = randomTransactionId()) =>
  encodeStunMessage(stunMessage('request', StunMethod.Binding, tid, attrs), { fingerprint });

test('answers a Binding request with XOR-MAPPED-ADDRESS of the source, same transaction id', () => {
  const { server, sent, reply } = setup();
  const tid = randomTransactionId();
  assert.deepEqual(server.handleDatagram(binding([], false, tid), V4), { kind: 'answered' });
  const r = reply();
  assert.equal(r.cls, 'success');
  assert.equal(r.method, StunMethod.Binding);
  assert.deepEqual(r.transactionId, tid);
  assert.deepEqual(getAttribute(r, XorMappedAddress), { ...V4, family: 4 });
  assert.equal(r.fingerprint, 'absent');
  assert.equal(hasAttribute(r, StunAttr.Software), false);
  assert.deepEqual({ port: sent[0]!.port, address: sent[0]!.address }, V4);
  assert.equal(server.counters.answered, 1);
});

test('adds FINGERPRINT when the request had one; IPv6 clients get IPv6 addresses', () => {
  const { server, reply } = setup();
  server.handleDatagram(binding([], true), V6);
  const r = reply();
  assert.equal(r.fingerprint, 'valid');
  assert.deepEqual(getAttribute(r, XorMappedAddress), { ...V6, family: 6 });
});

test('a dual-stack socket reports IPv4 as ::ffff:a.b.c.d: the mapped address is IPv4, the reply goes back as reported', () => {
  const { server, sent, reply } = setup();
  server.handleDatagram(binding(), { address: '::ffff:198.51.100.7', port: 5 });
  assert.deepEqual(getAttribute(reply(), XorMappedAddress), { address: '198.51.100.7', port: 5, family: 4 });
  assert.equal(sent[0]!.address, '::ffff:198.51.100.7');
  assert.equal(sent[0]!.buf.length, 32); // IPv4 budget: 20 + 12
});

test('MESSAGE-INTEGRITY in a request is ignored (no credentials here), the request is still answered', () => {
  const { server, reply } = setup();
  const req = encodeStunMessage(stunMessage('request', StunMethod.Binding, randomTransactionId(), [attr(Username, 'a:b'), attr(Priority, 1)]), {
    integrityKey: shortTermKey('x'), fingerprint: true,
  });
  server.handleDatagram(req, V4);
  assert.equal(reply().cls, 'success');
});

test('unknown comprehension-required attributes get 420 with UNKNOWN-ATTRIBUTES; optional ones are ignored', () => {
  const { server, reply } = setup();
  const r = server.handleDatagram(binding([{ type: 0x7001, value: Buffer.alloc(4) }, { type: 0xc001, value: Buffer.alloc(4) }, { type: 0x0003, value: Buffer.alloc(0) }], true), V4);
  assert.deepEqual(r, { kind: 'error-response', code: 420 });
  const e = reply();
  assert.equal(e.cls, 'error');
  assert.equal(getAttribute(e, ErrorCode)?.code, 420);
  assert.deepEqual(getAttribute(e, UnknownAttributes), [0x7001, 0x0003]);
  assert.equal(e.fingerprint, 'valid');
  const ok = setup();
  ok.server.handleDatagram(binding([{ type: 0xc001, value: Buffer.alloc(4) }]), V4);
  assert.equal(ok.reply().cls, 'success');
});

test('a request with a malformed known attribute gets 400', () => {
  const { server, reply } = setup();
  const r = server.handleDatagram(binding([{ type: StunAttr.Priority, value: Buffer.alloc(3) }]), V4);
  assert.deepEqual(r, { kind: 'error-response', code: 400 });
  assert.equal(getAttribute(reply(), ErrorCode)?.code, 400);
});

test('other request methods get 400', () => {
  const { server, reply } = setup();
  const req = encodeStunMessage(stunMessage('request', StunMethod.Allocate, randomTransactionId(), [{ type: StunAttr.RequestedTransport, value: Buffer.from([17, 0, 0, 0]) }]));
  assert.deepEqual(server.handleDatagram(req, V4), { kind: 'error-response', code: 400 });
  assert.equal(reply().method, StunMethod.Allocate);
});

test('silently drops: bad FINGERPRINT, broken framing, non-STUN', () => {
  const { server, sent } = setup();
  const bad = binding([], true);
  bad[bad.length - 1]! ^= 1;
  assert.deepEqual(server.handleDatagram(bad, V4), { kind: 'dropped', reason: 'bad-fingerprint' });
  const truncated = binding([attr(Username, 'abcd')]).subarray(0, 22);
  assert.deepEqual(server.handleDatagram(truncated, V4), { kind: 'dropped', reason: 'malformed' });
  const oddLength = Buffer.concat([binding(), Buffer.alloc(2)]);
  oddLength.writeUInt16BE(2, 2);
  assert.deepEqual(server.handleDatagram(oddLength, V4), { kind: 'dropped', reason: 'malformed' });
  const noCookie = binding();
  noCookie.writeUInt32BE(MAGIC_COOKIE ^ 1, 4);
  assert.deepEqual(server.handleDatagram(noCookie, V4), { kind: 'dropped', reason: 'not-stun' });
  assert.equal(sent.length, 0);
  assert.equal(server.counters.dropped['bad-fingerprint'] + server.counters.dropped.malformed + server.counters.dropped['not-stun'], 4);
});

test('responses and indications are passed on, not answered', () => {
  const { server, sent } = setup();
  const resp = encodeStunMessage(stunMessage('success', StunMethod.Binding, randomTransactionId(), [attr(XorMappedAddress, { ...V4, family: 4 })]));
  const r = server.handleDatagram(resp, V4);
  assert.equal(r.kind, 'pass');
  const ind = encodeStunMessage(stunMessage('indication', StunMethod.Binding, randomTransactionId()));
  assert.equal(server.handleDatagram(ind, V4).kind, 'pass');
  assert.equal(sent.length, 0);
  const seen: string[] = [];
  stunRoute(server, (m) => seen.push(m.cls))(resp, V4);
  assert.deepEqual(seen, ['success']);
});

test('SOFTWARE is off by default, and sent only when it fits the amplification bound', () => {
  const { server, sent } = setup({ software: 'Sluice test' });
  server.handleDatagram(binding(), V4); // 20-byte request: no room for SOFTWARE
  assert.equal(hasAttribute(decodeStunDatagram(sent[0]!.buf)!, StunAttr.Software), false);
  server.handleDatagram(binding([attr(Username, 'padding-padding-padding')]), V4);
  assert.equal(getAttribute(decodeStunDatagram(sent[1]!.buf)!, Software), 'Sluice test');
  assert.throws(() => new StunBindingServer(() => {}, { software: 'x'.repeat(800) }), { code: 'SLUICE_ERR_STUN_INVALID' });
});

test('a send that throws is counted, never thrown', () => {
  const server = new StunBindingServer(() => { throw new Error('closed'); });
  assert.deepEqual(server.handleDatagram(binding(), V4), { kind: 'dropped', reason: 'send-error' });
  assert.equal(server.counters.dropped['send-error'], 1);
});

test('AMP-3: a minimal Binding request gets a response of request + 12 bytes (IPv4) / + 24 (IPv6)', () => {
  for (const [from, extra] of [[V4, 12], [V6, 24]] as const) {
    for (const fingerprint of [false, true]) {
      const { server, sent } = setup();
      const req = binding([], fingerprint);
      server.handleDatagram(req, from);
      assert.equal(sent[0]!.buf.length, req.length + extra);
    }
  }
});

test('AMP-3 property: no datagram, valid or not, draws a response above request + 12 (IPv4) or + 24 (IPv6)', () => {
  const tidArb = fc.uint8Array({ minLength: 12, maxLength: 12 }).map((a) => Buffer.from(a));
  const attrArb = fc
    .tuple(fc.integer({ min: 0, max: 0xffff }).filter((t) => t !== StunAttr.MessageIntegrity && t !== StunAttr.MessageIntegritySha256 && t !== StunAttr.Fingerprint), fc.uint8Array({ maxLength: 24 }))
    .map(([type, value]) => ({ type, value: Buffer.from(value) }));
  const validish = fc.tuple(fc.integer({ min: 0, max: 0xfff }), tidArb, fc.array(attrArb, { maxLength: 5 }), fc.boolean()).map(([method, tid, attrs, fp]) =>
    encodeStunMessage(stunMessage('request', method % 3 === 0 ? method : StunMethod.Binding, tid, attrs), { fingerprint: fp }));
  const mutated = fc.tuple(validish, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([b, at, x]) => {
    const c = Buffer.from(b);
    c[at % c.length]! ^= x;
    return c;
  });
  const raw = fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a));
  const fromArb = fc.constantFrom({ ...V4, extra: 12 }, { ...V6, extra: 24 }, { address: '::ffff:10.0.0.1', port: 1, extra: 12 });
  fc.assert(
    fc.property(fc.oneof(validish, mutated, raw), fromArb, fc.option(fc.string({ maxLength: 60 }), { nil: undefined }), (buf, from, software) => {
      const sent: Buffer[] = [];
      const server = new StunBindingServer((b) => void sent.push(b), { software });
      server.handleDatagram(buf, from);
      for (const s of sent) assert.ok(s.length <= buf.length + from.extra, `${s.length} > ${buf.length} + ${from.extra}`);
    }),
    { numRuns: 2000 },
  );
});

test('demux routes by first byte: STUN to the server, ChannelData and application elsewhere', () => {
  const { server, sent } = setup();
  const app: Buffer[] = [];
  const demux = new DatagramDemux({ stun: stunRoute(server), application: (b) => void app.push(b) });
  demux.handle(binding(), V4);
  demux.handle(Buffer.from([0x40, 0x00, 0x00, 0x00]), V4);
  demux.handle(Buffer.from([0x80, 1, 2]), V4);
  demux.handle(Buffer.alloc(0), V4);
  assert.equal(sent.length, 1);
  assert.equal(app.length, 2);
  assert.equal(demux.unrouted['channel-data'], 1);
});

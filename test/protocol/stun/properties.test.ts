import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalIp, formatV6, type Endpoint } from '../../../src/core/address.js';
import { isSluiceError } from '../../../src/core/errors.js';
import {
  ATTRIBUTE_CODECS, ChannelNumber, Data, DontFragment, ErrorCode, EvenPort, IceControlled, IceControlling, KNOWN_ATTRIBUTES,
  Lifetime, MappedAddress, Nonce, PasswordAlgorithmAttr, Priority, Realm, RequestedAddressFamily, RequestedTransport,
  ReservationToken, Software, UnknownAttributes, UseCandidate, Userhash, Username, XorMappedAddress, XorPeerAddress,
  XorRelayedAddress, attr, decodeStunDatagram, decodeStunMessage, encodeStunMessage, encodedStunLength, stunMessage,
  verifyIntegrity, type AttributeEntry, type EncodeOptions, type StunClass,
} from '../../../src/protocol/stun/index.js';

/** Properties of the codec (STYLE convention 12; threats-and-tests TH-6 / ICE-1). */

const tidArb = fc.uint8Array({ minLength: 12, maxLength: 12 }).map((a) => Buffer.from(a));
const bytesArb = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

const endpointArb: fc.Arbitrary<Endpoint> = fc.oneof(
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 0xffff })).map(([a, port]) => ({ address: a, port, family: 4 as const })),
  fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 0xffff })).map(([b, port]) => {
    const c = canonicalIp(formatV6(b))!;
    return { address: c.address, port, family: c.family };
  }),
);
const textArb = (maxChars: number) => fc.string({ unit: 'binary', maxLength: maxChars });

const entryArb: fc.Arbitrary<AttributeEntry> = fc.oneof(
  endpointArb.map((v) => attr(XorMappedAddress, v)),
  endpointArb.map((v) => attr(XorPeerAddress, v)),
  endpointArb.map((v) => attr(XorRelayedAddress, v)),
  endpointArb.map((v) => attr(MappedAddress, v)),
  textArb(120).filter((s) => Buffer.byteLength(s) <= 513).map((v) => attr(Username, v)),
  textArb(127).map((v) => attr(Realm, v)),
  textArb(127).map((v) => attr(Nonce, v)),
  textArb(127).map((v) => attr(Software, v)),
  fc.record({ code: fc.integer({ min: 300, max: 699 }), reason: textArb(127) }, { noNullPrototype: true }).map((v) => attr(ErrorCode, v)),
  fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 8 }).map((v) => attr(UnknownAttributes, v)),
  fc.integer({ min: 0, max: 0xffffffff }).map((v) => attr(Priority, v)),
  fc.integer({ min: 0, max: 0xffffffff }).map((v) => attr(Lifetime, v)),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => attr(IceControlled, v)),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => attr(IceControlling, v)),
  fc.constant(attr(UseCandidate, true)),
  fc.constant(attr(DontFragment, true)),
  fc.integer({ min: 0x4000, max: 0x4fff }).map((v) => attr(ChannelNumber, v)),
  fc.integer({ min: 0, max: 255 }).map((v) => attr(RequestedTransport, v)),
  fc.constantFrom(4 as const, 6 as const).map((v) => attr(RequestedAddressFamily, v)),
  fc.boolean().map((v) => attr(EvenPort, { reserveNext: v })),
  fc.uint8Array({ minLength: 8, maxLength: 8 }).map((v) => attr(ReservationToken, Buffer.from(v))),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((v) => attr(Userhash, Buffer.from(v))),
  bytesArb(300).map((v) => attr(Data, v)),
  fc.record({ algorithm: fc.integer({ min: 0, max: 0xffff }), parameters: bytesArb(9) }, { noNullPrototype: true }).map((v) => attr(PasswordAlgorithmAttr, v)),
);

/** An attribute type this codec does not know, with arbitrary content. */
const unknownArb = fc
  .tuple(fc.integer({ min: 0, max: 0xffff }).filter((t) => !KNOWN_ATTRIBUTES.has(t)), bytesArb(40))
  .map(([type, value]) => ({ type, value }));

const messageArb = fc.record({
  cls: fc.constantFrom<StunClass>('request', 'indication', 'success', 'error'),
  method: fc.integer({ min: 0, max: 0xfff }),
  transactionId: tidArb,
  entries: fc.array(fc.oneof({ weight: 4, arbitrary: entryArb }, { weight: 1, arbitrary: unknownArb }), { maxLength: 12 }),
});

const optsArb: fc.Arbitrary<EncodeOptions> = fc.record({
  integrityKey: fc.option(bytesArb(40), { nil: undefined }),
  integrity: fc.constantFrom('sha1' as const, 'sha256' as const, 'both' as const),
  fingerprint: fc.boolean(),
});

const onlyTypedErrors = (fn: () => void): void => {
  try {
    fn();
  } catch (e) {
    if (!isSluiceError(e, 'SLUICE_ERR_STUN_INVALID')) throw e;
  }
};

test('encode then decode gives back the message, with integrity and fingerprint valid', () => {
  fc.assert(
    fc.property(messageArb, optsArb, ({ cls, method, transactionId, entries }, opts) => {
      const m = stunMessage(cls, method, transactionId, entries);
      const bytes = encodeStunMessage(m, opts);
      assert.equal(bytes.length, encodedStunLength(m, opts));
      const d = decodeStunDatagram(bytes)!;
      assert.equal(d.cls, cls);
      assert.equal(d.method, method);
      assert.deepEqual(d.transactionId, transactionId);
      assert.deepEqual(d.attributes, m.attributes);
      entries.forEach((e, i) => {
        if ('codec' in e) assert.deepEqual(e.codec.decode(d.attributes[i]!.value, d.transactionId), e.value);
      });
      assert.equal(d.fingerprint, opts.fingerprint ? 'valid' : 'absent');
      if (opts.integrityKey) {
        if (opts.integrity !== 'sha256') assert.equal(verifyIntegrity(d, opts.integrityKey, 'sha1'), 'ok');
        if (opts.integrity !== 'sha1') assert.equal(verifyIntegrity(d, opts.integrityKey, 'sha256'), 'ok');
      }
      // Canonical bytes re-encode identically.
      assert.deepEqual(encodeStunMessage(d, opts), bytes);
    }),
    { numRuns: 400 },
  );
});

test('arbitrary bytes never throw anything but SLUICE_ERR_STUN_INVALID', () => {
  const framed = fc.tuple(fc.integer({ min: 0, max: 0x3fff }), tidArb, bytesArb(200)).map(([type, tid, body]) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(type, 0);
    h.writeUInt16BE(body.length, 2);
    h.writeUInt32BE(0x2112a442, 4);
    h.set(tid, 8);
    return Buffer.concat([h, body]);
  });
  fc.assert(
    fc.property(fc.oneof(bytesArb(64), framed), (buf) => {
      onlyTypedErrors(() => void decodeStunMessage(buf));
      onlyTypedErrors(() => {
        const d = decodeStunDatagram(buf);
        if (!d) return;
        for (const a of d.attributes) ATTRIBUTE_CODECS.get(a.type)?.decode(a.value, d.transactionId);
        verifyIntegrity(d, Buffer.from('k'), 'sha1');
        verifyIntegrity(d, Buffer.from('k'), 'sha256');
      });
    }),
    { numRuns: 3000 },
  );
});

test('mutated valid messages throw only the typed error, and a fingerprinted one never verifies', () => {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('append' as const), extra: bytesArb(12).filter((b) => b.length > 0) }),
    fc.record({ kind: fc.constant('length' as const), value: fc.integer({ min: 0, max: 0xffff }) }),
  );
  fc.assert(
    fc.property(messageArb, optsArb, mutation, ({ cls, method, transactionId, entries }, opts, mut) => {
      const bytes = Buffer.from(encodeStunMessage(stunMessage(cls, method, transactionId, entries), { ...opts, fingerprint: true }));
      let mutated: Buffer;
      if (mut.kind === 'flip') {
        mutated = bytes;
        mutated[mut.at % bytes.length]! ^= mut.bits;
      } else if (mut.kind === 'cut') {
        mutated = bytes.subarray(0, mut.at % bytes.length);
      } else if (mut.kind === 'append') {
        mutated = Buffer.concat([bytes, mut.extra]);
      } else {
        if (mut.value === bytes.length - 20) return;
        mutated = bytes;
        mutated.writeUInt16BE(mut.value, 2);
      }
      onlyTypedErrors(() => {
        const d = decodeStunDatagram(mutated);
        assert.ok(d === undefined || d.fingerprint !== 'valid', 'a damaged message passed FINGERPRINT');
      });
      onlyTypedErrors(() => void decodeStunMessage(mutated));
    }),
    { numRuns: 1500 },
  );
});

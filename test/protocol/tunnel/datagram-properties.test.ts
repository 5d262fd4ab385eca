import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DatagramOpener, DatagramSealer, encodeOriginBlock, readUnverifiedHeader, type OpenResult,
} from '../../../src/protocol/tunnel/index.js';
import { originArb } from './arbitraries.js';

/** Properties of datagram sealing (threats-and-tests SPF-2, EXP-2: nothing unauthenticated is ever accepted). */

const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a));
const keyIdArb = fc.integer({ min: 0, max: 0xffff_ffff });
const directionArb = fc.constantFrom('agent-to-gateway' as const, 'gateway-to-agent' as const);
const itemArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('data' as const), tag: fc.integer({ min: 1, max: 0xffff_ffff }), payload: fc.uint8Array({ maxLength: 1500 }), origin: fc.option(originArb, { nil: undefined }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('keepalive' as const, 'keepalive-ack' as const), counter: fc.integer({ min: 0, max: 0xffff_ffff }) }) },
);

test('round trip: whatever is sealed opens to the same content, in any delivery order within the window', () => {
  fc.assert(
    fc.property(keyArb, keyIdArb, directionArb, fc.array(itemArb, { minLength: 1, maxLength: 20 }), fc.func(fc.integer()), (key, keyId, direction, items, order) => {
      const sealer = new DatagramSealer({ key, direction, peerKeyId: keyId });
      const opener = new DatagramOpener({ key, direction, keyId });
      const sealed = items.map((it, sequence) => {
        const buf = it.kind === 'data'
          ? sealer.sealData(it.tag, it.payload, it.origin ? encodeOriginBlock(it.origin) : undefined)
          : it.kind === 'keepalive' ? sealer.sealKeepalive(it.counter) : sealer.sealKeepaliveAck(it.counter);
        return { it, sequence, buf };
      });
      const shuffled = [...sealed].sort((a, b) => order(a.sequence) - order(b.sequence) || a.sequence - b.sequence);
      let top = -1;
      for (const { it, sequence, buf } of shuffled) {
        const r = opener.open(buf);
        assert.equal(r.ok, true, JSON.stringify(r));
        if (!r.ok) return;
        const d = r.datagram;
        assert.equal(d.sequence, sequence);
        assert.equal(d.newest, sequence > top);
        top = Math.max(top, sequence);
        if (it.kind === 'data') {
          assert.ok(d.kind === 'data');
          assert.equal(d.tag, it.tag);
          assert.deepEqual(d.origin, it.origin);
          assert.deepEqual(new Uint8Array(d.payload), it.payload);
        } else {
          assert.ok(d.kind === it.kind);
          assert.equal(d.counter, it.counter);
        }
        assert.deepEqual(opener.open(buf), { ok: false, reason: 'replayed' });
      }
    }),
    { numRuns: 300 },
  );
});

test('random bytes never throw and never open, even with a matching key id', () => {
  const opener = new DatagramOpener({ key: Buffer.alloc(32, 1), direction: 'agent-to-gateway', keyId: 7 });
  const withKeyId = fc.uint8Array({ minLength: 32, maxLength: 200 }).map((a) => {
    const b = Buffer.from(a);
    b[0] = 0x0c + (b[0]! % 3);
    b[1] = b[0] === 0x0c ? b[1]! & 1 : 0;
    b.writeUInt32BE(7, 2);
    if (b[0] !== 0x0c) b.writeUInt32BE(0, 6);
    return b;
  });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)), withKeyId), (buf) => {
      const r: OpenResult = opener.open(buf);
      assert.equal(r.ok, false);
    }),
    { numRuns: 20_000 },
  );
});

test('every single-bit flip, truncation or extension of a sealed datagram is refused', () => {
  fc.assert(
    fc.property(keyArb, itemArb, fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('grow' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
    ), (key, it, mu) => {
      const sealer = new DatagramSealer({ key, direction: 'gateway-to-agent', peerKeyId: 9 });
      const opener = new DatagramOpener({ key, direction: 'gateway-to-agent', keyId: 9 });
      let d = it.kind === 'data' ? sealer.sealData(it.tag, it.payload, it.origin ? encodeOriginBlock(it.origin) : undefined) : sealer.sealKeepalive(1);
      if (mu.kind === 'flip') d[mu.at % d.length]! ^= 1 << mu.bit;
      else if (mu.kind === 'cut') d = d.subarray(0, mu.at % d.length);
      else d = Buffer.concat([d, mu.extra]);
      const r = opener.open(d);
      assert.equal(r.ok, false);
      assert.equal(opener.highestSequence, -1);
    }),
    { numRuns: 3000 },
  );
});

test('a datagram sealed under another key never opens', () => {
  fc.assert(
    fc.property(keyArb, keyArb, fc.uint8Array({ maxLength: 100 }), (k1, k2, payload) => {
      fc.pre(!k1.equals(k2));
      const d = new DatagramSealer({ key: k1, direction: 'agent-to-gateway', peerKeyId: 1 }).sealData(1, payload);
      assert.deepEqual(new DatagramOpener({ key: k2, direction: 'agent-to-gateway', keyId: 1 }).open(d), { ok: false, reason: 'auth-failed' });
    }),
    { numRuns: 300 },
  );
});

test('readUnverifiedHeader never throws on random bytes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (a) => void readUnverifiedHeader(Buffer.from(a))), { numRuns: 20_000 });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ControlFrameReader, PRE_AUTH_MAX_FRAME_BYTES, decodeControlFrame, encodeControlMessage, receiveTransition, type ControlMessage,
} from '../../../src/protocol/tunnel/index.js';
import { bigMessageArb, messageArb } from './arbitraries.js';
import { GOLDEN, hexBytes } from './golden.js';
import { onlyTunnelErrors } from './helpers.js';

/** Properties of the control codec (STYLE.md 12; threats-and-tests 4.3 P-roundtrip, P-prefix, typed errors only). */

test('round trip: decode(encode(m)) is m, consuming exactly the frame', () => {
  fc.assert(
    fc.property(messageArb, (m) => {
      const f = encodeControlMessage(m);
      assert.equal(f.readUInt32BE(0), f.length - 4);
      const r = decodeControlFrame(f);
      assert.equal(r.kind, 'ok');
      if (r.kind === 'ok') {
        assert.deepEqual(r.message, m);
        assert.equal(r.length, f.length);
        assert.deepEqual(encodeControlMessage(r.message), f);
      }
    }),
    { numRuns: 3000 },
  );
});

test('round trip at the payload limits', () => {
  fc.assert(fc.property(bigMessageArb, (m) => assert.deepEqual((decodeControlFrame(encodeControlMessage(m)) as { message: unknown }).message, m)), {
    numRuns: 50,
  });
});

test('every strict prefix of a frame is need-more', () => {
  fc.assert(
    fc.property(messageArb, fc.nat(), (m, cut) => {
      const f = encodeControlMessage(m);
      assert.deepEqual(decodeControlFrame(f.subarray(0, cut % f.length)), { kind: 'need-more' });
    }),
    { numRuns: 2000 },
  );
});

test('a stream of frames split at random points comes out whole and in order', () => {
  fc.assert(
    fc.property(fc.array(messageArb, { minLength: 1, maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 40 }), (ms, cuts) => {
      const all = Buffer.concat(ms.map(encodeControlMessage));
      const reader = new ControlFrameReader();
      const got: ControlMessage[] = [];
      let pos = 0;
      for (let i = 0; pos < all.length; i++) {
        const n = cuts[i % cuts.length]!;
        got.push(...reader.push(all.subarray(pos, pos + n)));
        pos += n;
      }
      assert.deepEqual(got, ms);
      assert.equal(reader.bufferedBytes, 0);
    }),
    { numRuns: 500 },
  );
});

test('messages from the reader survive later pushes (no buffer is rewritten under them)', () => {
  const reader = new ControlFrameReader();
  const a = encodeControlMessage({ type: 'stream-data', streamId: 1, data: Buffer.from('first') });
  const b = encodeControlMessage({ type: 'stream-data', streamId: 1, data: Buffer.from('second') });
  const [m1] = reader.push(Buffer.concat([a, b.subarray(0, 7)]));
  const [m2] = reader.push(b.subarray(7));
  reader.push(Buffer.alloc(3, 0xee));
  assert.deepEqual(m1, { type: 'stream-data', streamId: 1, data: Buffer.from('first') });
  assert.deepEqual(m2, { type: 'stream-data', streamId: 1, data: Buffer.from('second') });
});

test('random bytes: the decoder returns need-more or ok, or throws a TunnelError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (a, preAuth) => {
      onlyTunnelErrors(() => decodeControlFrame(Buffer.from(a), { maxFrameBytes: preAuth ? PRE_AUTH_MAX_FRAME_BYTES : undefined }));
    }),
    { numRuns: 20_000 },
  );
});

test('random bodies behind a valid length and a real type byte: only TunnelErrors', () => {
  const types = [...new Set(GOLDEN.map((g) => hexBytes(g.hex)[4]!))];
  fc.assert(
    fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 80 }), (type, body) => {
      const f = Buffer.concat([Buffer.from([0, 0, 0, body.length + 1, type]), body]);
      onlyTunnelErrors(() => {
        const r = decodeControlFrame(f);
        assert.equal(r.kind, 'ok');
        if (r.kind === 'ok') assert.deepEqual(encodeControlMessage(r.message), f, 'an accepted body re-encodes to the same bytes');
      });
    }),
    { numRuns: 20_000 },
  );
});

test('mutated valid frames (bit flips, byte changes, truncation, extension): only TunnelErrors, and what decodes re-encodes identically', () => {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('grow' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  );
  fc.assert(
    fc.property(messageArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (m, muts) => {
      let f = Buffer.from(encodeControlMessage(m));
      for (const mu of muts) {
        if (mu.kind === 'flip') f[mu.at % f.length]! ^= 1 << mu.bit;
        else if (mu.kind === 'set') f[mu.at % f.length] = mu.value;
        else if (mu.kind === 'cut') f = f.subarray(0, mu.at % f.length);
        else f = Buffer.concat([f, mu.extra]);
      }
      onlyTunnelErrors(() => {
        const r = decodeControlFrame(f);
        if (r.kind === 'ok') assert.deepEqual(encodeControlMessage(r.message), f.subarray(0, r.length));
      });
      onlyTunnelErrors(() => new ControlFrameReader().push(f));
    }),
    { numRuns: 20_000 },
  );
});

test('a gateway fed random frames before auth never reaches open without HELLO then AUTH', () => {
  fc.assert(
    fc.property(fc.array(messageArb, { maxLength: 6 }), (ms) => {
      let phase = 'await-hello' as Parameters<typeof receiveTransition>[1];
      const seen: string[] = [];
      for (const m of ms) {
        try {
          phase = receiveTransition('gateway', phase, m.type);
          seen.push(m.type);
        } catch (e) {
          onlyTunnelErrors(() => {
            throw e;
          });
          break;
        }
        if (phase === 'open') {
          assert.deepEqual(seen.slice(0, 2), ['hello', 'auth']);
          break;
        }
      }
    }),
    { numRuns: 5000 },
  );
});

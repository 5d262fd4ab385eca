// fast-check properties of the udpexposer codec: round trips, and untrusted bytes (random or
// mutated valid tokens) never make a decoder throw, and never verify unless unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isSluiceError } from '../../../src/core/errors.js';
import {
  classifyServerDatagram, decodeFrame, decodeReplyClaims, decodeRequestClaims, encodeFrame, encodeReplyClaims,
  encodeReplyToken, encodeRequestClaims, encodeRequestToken, nextTag, TOKEN_PREFIX_BYTES, U64_MAX,
  verifyReplyToken, verifyRequestToken, verifyToken, type ReplyClaims,
} from '../../../src/protocol/udpexposer/index.js';
import { vectorKey, wire } from './helpers.js';

const RUNS = { numRuns: 400 };
const u64 = fc.bigInt({ min: 0n, max: U64_MAX });
const nonce = fc.option(u64, { nil: null });
const reply: fc.Arbitrary<ReplyClaims> = fc.oneof(
  fc.constant({ kind: 'registered' } as const),
  u64.map((value) => ({ kind: 'retry', value }) as const),
);

/** Runs `f`; anything it throws must be the project's typed error. */
function onlyTyped(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    assert.ok(isSluiceError(err), `threw ${String(err)}`);
  }
}

function allDecoders(buf: Buffer): void {
  onlyTyped(() => decodeFrame(buf));
  onlyTyped(() => classifyServerDatagram(buf, true));
  onlyTyped(() => classifyServerDatagram(buf, false));
  onlyTyped(() => verifyToken(buf, vectorKey));
  onlyTyped(() => verifyRequestToken(buf, vectorKey));
  onlyTyped(() => verifyReplyToken(buf, vectorKey));
  onlyTyped(() => decodeRequestClaims(buf.toString('latin1')));
  onlyTyped(() => decodeReplyClaims(buf.toString('utf8')));
}

test('frames round-trip for every tag and payload', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 2046 }), (tag, payload) => {
      const d = decodeFrame(encodeFrame(tag, payload));
      assert.ok(d.kind === 'ok');
      assert.equal(d.value.tag, tag);
      assert.deepEqual(new Uint8Array(d.value.payload), payload);
    }),
    RUNS,
  );
});

test('tags wrap 65535 -> 0 and encoders refuse non-u16 tags with the typed error', () => {
  assert.equal(nextTag(65535), 0);
  assert.equal(nextTag(0), 1);
  fc.assert(
    fc.property(fc.oneof(fc.integer({ min: 65536 }), fc.integer({ max: -1 }), fc.double({ noInteger: true })), (bad) => {
      assert.throws(() => encodeFrame(bad, Buffer.alloc(0)), (e) => isSluiceError(e, 'SLUICE_ERR_USAGE'));
    }),
  );
});

test('request and reply claims round-trip through JSON text and through signed tokens', () => {
  fc.assert(
    fc.property(nonce, reply, (n, r) => {
      assert.deepEqual(decodeRequestClaims(encodeRequestClaims({ nonce: n })), { ok: true, value: { nonce: n } });
      assert.deepEqual(decodeReplyClaims(encodeReplyClaims(r)), { ok: true, value: r });
      assert.deepEqual(verifyRequestToken(encodeRequestToken({ nonce: n }, vectorKey), vectorKey), { ok: true, value: { nonce: n } });
      assert.deepEqual(verifyReplyToken(encodeReplyToken(r, vectorKey), vectorKey), { ok: true, value: r });
    }),
    RUNS,
  );
});

test('claims decoding agrees with JSON.parse wherever JSON.parse is exact', () => {
  fc.assert(
    fc.property(fc.json(), (text) => {
      const ref = JSON.parse(text) as unknown;
      const r = decodeRequestClaims(text);
      const isObj = typeof ref === 'object' && ref !== null && !Array.isArray(ref);
      if (!isObj) return assert.equal(r.ok, false);
      const n = (ref as Record<string, unknown>)['nonce'];
      // JSON.parse keeps the last duplicate; serde refuses duplicates. fc.json() writes none.
      if (n === undefined || n === null) return assert.deepEqual(r, { ok: true, value: { nonce: null } });
      const exact = typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && /"nonce":(0|[1-9]\d*)[,}]/.test(text);
      if (exact) assert.deepEqual(r, { ok: true, value: { nonce: BigInt(n) } });
      else if (typeof n !== 'number') assert.equal(r.ok, false);
    }),
    RUNS,
  );
});

test('random bytes never make a decoder throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2100 }), (b) => allDecoders(Buffer.from(b))), { numRuns: 1000 });
});

test('random bytes behind the token prefix never verify and never throw', () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[A-Za-z0-9_.=-]{0,200}$/), (tail) => {
      const buf = Buffer.concat([TOKEN_PREFIX_BYTES, Buffer.from(tail, 'latin1')]);
      allDecoders(buf);
      assert.equal(verifyToken(buf, vectorKey).ok, false);
    }),
    { numRuns: 1000 },
  );
});

const validTokens = [
  wire.password_mode.initial_request.token!,
  wire.password_mode.echo_request_example.token!,
  wire.password_mode.retry_reply.token!,
  wire.password_mode.registered_reply.token!,
].map((t) => Buffer.from(t, 'ascii'));

type Mutation = { op: 'flip'; at: number; bit: number } | { op: 'cut'; at: number } | { op: 'insert'; at: number; byte: number } | { op: 'delete'; at: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
);

function mutate(src: Buffer, m: Mutation): Buffer {
  const b = Buffer.from(src);
  const at = m.at % (b.length + 1);
  switch (m.op) {
    case 'flip':
      if (at < b.length) b[at]! ^= 1 << m.bit;
      return b;
    case 'cut':
      return b.subarray(0, at);
    case 'insert':
      return Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
    case 'delete':
      return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
  }
}

test('a mutated valid token never verifies and never throws', () => {
  fc.assert(
    fc.property(fc.constantFrom(...validTokens), fc.array(mutation, { minLength: 1, maxLength: 4 }), (token, ms) => {
      const m = ms.reduce(mutate, token);
      allDecoders(m);
      if (!m.equals(token)) assert.equal(verifyToken(m, vectorKey).ok, false, m.toString('latin1'));
    }),
    { numRuns: 2000 },
  );
});

test('whitespace between JSON tokens does not change what the claims mean', () => {
  const ws = fc.stringMatching(/^[ \t\r\n]{0,3}$/);
  fc.assert(
    fc.property(nonce, fc.array(ws, { minLength: 6, maxLength: 6 }), (n, w) => {
      const v = n === null ? 'null' : n.toString();
      const text = `${w[0]}{${w[1]}"nonce"${w[2]}:${w[3]}${v}${w[4]}}${w[5]}`;
      assert.deepEqual(decodeRequestClaims(text), { ok: true, value: { nonce: n } });
    }),
    RUNS,
  );
});

import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AEADS, defaultAead, nodeAead, preferAead } from '../../../src/protocol/tunnel/aead.js';
import { DatagramOpener, DatagramSealer } from '../../../src/protocol/tunnel/index.js';

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b));

test('the sodium implementation is there (an optional dependency; CI installs it) and is the default', (t) => {
  const names = AEADS.map((a) => a.name);
  if (!names.includes('sodium')) {
    const why = 'sodium-native did not load: the tunnel uses node:crypto (slower)';
    if (process.env.CI === 'true' && process.env.SLUICE_AEAD !== 'node') assert.fail(why);
    console.warn(`*** ${why} ***`);
    t.skip(why);
    return;
  }
  // The codec reads no environment: SLUICE_AEAD is the process's (main.ts), not this module's.
  assert.equal(defaultAead.name, 'sodium');
});

test('property: every implementation seals to the same bytes as node:crypto, opens the others, and refuses any flipped bit', () => {
  fc.assert(
    fc.property(bytes(32, 32), bytes(12, 12), bytes(0, 40), bytes(0, 1500), fc.nat(), (key, nonce, aad, plain, flip) => {
      const sealed = (aead: typeof nodeAead) => {
        const out = Buffer.alloc(plain.length + 16);
        plain.copy(out, 0);
        aead.sealInPlace(out, 0, plain.length, aad, nonce, key);
        return out;
      };
      const reference = sealed(nodeAead);
      for (const a of AEADS) {
        const mine = sealed(a);
        assert.ok(mine.equals(reference), `${a.name} seals like node:crypto`);
        for (const b of AEADS) assert.deepEqual(b.open(mine, aad, nonce, key), plain, `${b.name} opens ${a.name}`);
        const bad = Buffer.from(mine);
        bad[flip % bad.length]! ^= 1 << (flip % 8);
        assert.equal(a.open(bad, aad, nonce, key), undefined, `${a.name} refuses a flipped bit`);
        assert.equal(a.open(mine.subarray(0, 15), aad, nonce, key), undefined, 'shorter than a tag');
      }
    }),
    { numRuns: 300 },
  );
});

test('sealing at an offset leaves the bytes before it alone (the datagram header)', () => {
  for (const a of AEADS) {
    const out = Buffer.alloc(16 + 5 + 16, 0xaa);
    out.write('hello', 16);
    a.sealInPlace(out, 16, 5, out.subarray(0, 16), Buffer.alloc(12), Buffer.alloc(32, 1));
    assert.ok(out.subarray(0, 16).equals(Buffer.alloc(16, 0xaa)), a.name);
    assert.equal(a.open(out.subarray(16), out.subarray(0, 16), Buffer.alloc(12), Buffer.alloc(32, 1))!.toString(), 'hello');
  }
});

test('preferAead makes node:crypto the default of the sealers built after it; an implementation that is not there is a clear error', (t) => {
  const before = defaultAead;
  const original = nodeAead.sealInPlace;
  t.after(() => {
    (nodeAead as { sealInPlace: typeof original }).sealInPlace = original;
    preferAead(before.name);
  });
  let nodeSeals = 0;
  (nodeAead as { sealInPlace: typeof original }).sealInPlace = (...a) => (nodeSeals++, original(...a));
  const key = Buffer.alloc(32, 7);
  const sealer = () => new DatagramSealer({ key, direction: 'agent-to-gateway', peerKeyId: 5 });
  const fast = sealer().sealData(1, Buffer.from('x'));
  assert.equal(nodeSeals, before.name === 'node' ? 1 : 0, `a default sealer seals with ${before.name}`);
  assert.equal(preferAead('node'), nodeAead);
  assert.equal(defaultAead, nodeAead);
  nodeSeals = 0;
  const slow = sealer().sealData(1, Buffer.from('x'));
  assert.equal(nodeSeals, 1, 'a sealer built after preferAead seals with node:crypto');
  assert.deepEqual(slow, fast, 'and gives the same bytes');
  assert.ok(new DatagramOpener({ key, direction: 'agent-to-gateway', keyId: 5 }).open(slow).ok);
  if (!AEADS.some((a) => a.name === 'sodium')) {
    assert.throws(() => preferAead('sodium'), /the sodium AEAD is not available in this process/);
  }
});

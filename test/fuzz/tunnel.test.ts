// Fuzz: tunnel control frames (one frame, and a stream in arbitrary chunks) and sealed datagrams,
// including bytes that decrypt correctly but carry a mutated origin block (fuzz.ts says how).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ControlFrameReader,
  DatagramOpener,
  DatagramSealer,
  PRE_AUTH_MAX_FRAME_BYTES,
  decodeControlFrame,
  encodeControlMessage,
  encodeOriginBlock,
  isTunnelError,
  readUnverifiedHeader,
} from '../../src/protocol/tunnel/index.js';
import { GOLDEN } from '../protocol/tunnel/golden.js';
import { fuzz, hexBytes, mutatedInputs } from './fuzz.js';

const frames = GOLDEN.map((g) => hexBytes(g.hex));
const typed = (err: unknown) => isTunnelError(err) && err.code !== undefined;

test('fuzz: decodeControlFrame before and after authentication', (t) => {
  assert.ok(frames.length >= 20, `${frames.length} golden frames`);
  const stats = fuzz({
    inputs: fc.tuple(mutatedInputs(frames), fc.constantFrom(PRE_AUTH_MAX_FRAME_BYTES, undefined)),
    run: ([buf, maxFrameBytes]) => {
      const r = decodeControlFrame(buf, { maxFrameBytes });
      if (r.kind === 'ok') {
        assert.ok(r.length <= buf.length);
        // What decodes re-encodes to a frame that decodes to the same message.
        const again = decodeControlFrame(encodeControlMessage(r.message));
        assert.equal(again.kind, 'ok');
      }
    },
    typedError: typed,
    numRuns: 6000,
  });
  t.diagnostic(`control frame: ${JSON.stringify(stats)}`);
});

test('fuzz: ControlFrameReader over a mutated stream cut into arbitrary chunks', (t) => {
  const stream = fc.array(mutatedInputs(frames), { minLength: 1, maxLength: 6 }).map((bs) => Buffer.concat(bs));
  const stats = fuzz({
    inputs: fc.tuple(stream, fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 })),
    run: ([buf, cuts]) => {
      const reader = new ControlFrameReader({ maxFrameBytes: PRE_AUTH_MAX_FRAME_BYTES });
      let at = 0;
      for (let i = 0; at < buf.length; i++) {
        const n = cuts[i % cuts.length]!;
        reader.push(buf.subarray(at, at + n));
        at += n;
        assert.ok(reader.bufferedBytes <= 4 + PRE_AUTH_MAX_FRAME_BYTES + 64, `${reader.bufferedBytes} bytes buffered`);
      }
    },
    typedError: typed,
    numRuns: 3000,
  });
  t.diagnostic(`frame reader: ${JSON.stringify(stats)}`);
});

const KEY = Buffer.alloc(32, 9);
const KEY_ID = 0x0a0b0c0d;
const sealer = new DatagramSealer({ key: KEY, direction: 'agent-to-gateway', peerKeyId: KEY_ID });
const ORIGINS = [
  encodeOriginBlock({ serviceId: 3, client: { address: '198.51.100.7', port: 40000, family: 4 } }),
  encodeOriginBlock({ serviceId: 0xffff, client: { address: '2001:db8::7', port: 1, family: 6 } }),
];
const datagrams = [
  sealer.sealData(1, Buffer.from('ping')),
  sealer.sealData(2, Buffer.alloc(0), ORIGINS[0]),
  sealer.sealData(0xffff, Buffer.alloc(64, 1), ORIGINS[1]),
  sealer.sealKeepalive(7),
  sealer.sealKeepaliveAck(8),
];

test('fuzz: sealed datagrams: header read and open never throw', (t) => {
  const opener = new DatagramOpener({ key: KEY, direction: 'agent-to-gateway', keyId: KEY_ID });
  const stats = fuzz({
    inputs: mutatedInputs(datagrams),
    run: (buf) => {
      readUnverifiedHeader(buf);
      const r = opener.open(buf);
      if (!r.ok) assert.equal(typeof r.reason, 'string');
    },
    typedError: () => false,
    numRuns: 4000,
  });
  t.diagnostic(`datagram open: ${JSON.stringify(stats)}`);
});

test('fuzz: authentic datagrams whose origin block is mutated (what a peer holding the key could send)', (t) => {
  const opener = new DatagramOpener({ key: KEY, direction: 'agent-to-gateway', keyId: KEY_ID });
  const stats = fuzz({
    inputs: fc.tuple(mutatedInputs(ORIGINS, 48), fc.uint8Array({ maxLength: 64 })),
    run: ([origin, payload]) => {
      let sealed: Buffer;
      try {
        sealed = sealer.sealData(5, payload, origin);
      } catch (err) {
        // The sealer may refuse an origin block it cannot carry; that is its typed error.
        assert.ok(typed(err), String(err));
        return;
      }
      const r = opener.open(sealed);
      if (!r.ok) assert.equal(typeof r.reason, 'string');
    },
    typedError: () => false,
    numRuns: 3000,
  });
  t.diagnostic(`datagram origin: ${JSON.stringify(stats)}`);
});

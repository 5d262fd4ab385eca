import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ControlFrameReader, MAX_STREAM_DATA_BYTES, encodeControlMessage, encodeStreamDataHeader, type ControlMessage, type TunnelErrorReason,
} from '../../../src/protocol/tunnel/index.js';
import { assertTunnelError } from './helpers.js';

/** A mix of full-size, small and odd-size STREAM_DATA on three streams between control frames. */
function sample(): ControlMessage[] {
  const out: ControlMessage[] = [];
  let fill = 1;
  const data = (streamId: number, n: number): ControlMessage => ({ type: 'stream-data', streamId, data: Buffer.alloc(n, fill++ & 0xff) });
  for (let i = 0; i < 6; i++) {
    out.push(data(2, MAX_STREAM_DATA_BYTES));
    out.push({ type: 'window-update', streamId: 4, increment: 1000 + i });
    out.push(data(4, 1 + i * 977));
    out.push(data(2, MAX_STREAM_DATA_BYTES - i));
    out.push({ type: 'ping', counter: i });
    out.push(data(6, 9));
    out.push({ type: 'stream-end', streamId: 6 + 2 * i });
  }
  return out;
}

/** Joins adjacent STREAM_DATA of one stream: what a byte-stream receiver sees. */
function normalise(ms: readonly ControlMessage[]): unknown[] {
  const out: unknown[] = [];
  for (const m of ms) {
    const last = out.at(-1) as { type: string; streamId: number; data: Buffer } | undefined;
    if (m.type === 'stream-data' && last?.type === 'stream-data' && last.streamId === m.streamId) {
      last.data = Buffer.concat([last.data, m.data]);
    } else {
      out.push(m.type === 'stream-data' ? { type: m.type, streamId: m.streamId, data: Buffer.from(m.data) } : m);
    }
  }
  return out;
}

function cut(bytes: Buffer, sizes: (i: number) => number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let pos = 0, i = 0; pos < bytes.length; i++) {
    const n = Math.max(1, Math.min(sizes(i), bytes.length - pos));
    chunks.push(Buffer.from(bytes.subarray(pos, pos + n))); // own memory per chunk, as a socket gives
    pos += n;
  }
  return chunks;
}

test('split STREAM_DATA: same messages in the same order, data never copied, for any chunking', () => {
  const msgs = sample();
  const wire = Buffer.concat(msgs.map((m) => encodeControlMessage(m)));
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const chunkings: [string, (i: number) => number][] = [
    ['TLS records (16384)', () => 16_384],
    ['one byte', () => 1],
    ['five bytes', () => 5],
    ['random 1..40000', () => 1 + (rnd() % 40_000)],
    ['random 1..20', () => 1 + (rnd() % 20)],
  ];
  for (const [name, sizes] of chunkings) {
    const chunks = cut(wire, sizes);
    const reader = new ControlFrameReader({ splitStreamData: true });
    const got: ControlMessage[] = [];
    for (const c of chunks) got.push(...reader.push(c));
    assert.deepEqual(normalise(got), normalise(msgs), name);
    assert.equal(reader.bufferedBytes, 0, name);
    // Zero copy: every data piece is a view of one of the chunks it came in, never a fresh buffer.
    const owners = new Set(chunks.map((c) => c.buffer));
    const pieces = got.filter((m) => m.type === 'stream-data');
    const viewed = pieces.filter((m) => owners.has((m as { data: Buffer }).data.buffer)).length;
    assert.equal(viewed, pieces.length, `${name}: ${pieces.length - viewed} of ${pieces.length} data pieces were copies`);
  }
});

test('without splitStreamData a frame that spans chunks still comes out whole', () => {
  const m: ControlMessage = { type: 'stream-data', streamId: 2, data: Buffer.alloc(MAX_STREAM_DATA_BYTES, 3) };
  const reader = new ControlFrameReader();
  const got: ControlMessage[] = [];
  for (const c of cut(encodeControlMessage(m), () => 16_384)) got.push(...reader.push(c));
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], m);
});

test('split STREAM_DATA keeps the codec checks: empty data, stream id 0, over-long data', () => {
  const header = (len: number, id: number) => {
    const h = Buffer.alloc(9);
    h.writeUInt32BE(len, 0);
    h[4] = 0x22;
    h.writeUInt32BE(id, 5);
    return h;
  };
  // a header split from its payload takes the piecewise path
  const check = (h: Buffer, code: TunnelErrorReason) => {
    const reader = new ControlFrameReader({ splitStreamData: true });
    assertTunnelError(() => {
      reader.push(h.subarray(0, 3));
      reader.push(Buffer.concat([h.subarray(3), Buffer.alloc(10)]));
    }, code);
    assertTunnelError(() => reader.push(Buffer.alloc(1)), code); // failed for good
    const whole = new ControlFrameReader({ splitStreamData: true });
    assertTunnelError(() => whole.push(Buffer.concat([h, Buffer.alloc(10)])), code);
  };
  check(header(5 + MAX_STREAM_DATA_BYTES + 1, 2), 'malformed');
  check(header(5 + 100, 0), 'malformed');
  // a data frame of length 5 (no payload) completes at once; the codec refuses it
  assertTunnelError(() => new ControlFrameReader({ splitStreamData: true }).push(header(5, 2)), 'malformed');
  // the header helper used by senders still round-trips through the split path
  const reader = new ControlFrameReader({ splitStreamData: true });
  const got = [...reader.push(encodeStreamDataHeader(8, 3)), ...reader.push(Buffer.from('abc'))];
  assert.deepEqual(normalise(got), [{ type: 'stream-data', streamId: 8, data: Buffer.from('abc') }]);
});

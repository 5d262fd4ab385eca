import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { ControlFrameReader, encodeControlMessage, type ControlMessage } from '../../src/protocol/tunnel/index.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { ControlChannel } from '../../src/upstream/agent/control-channel.js';

/** A socket stand-in that records every write call the channel's socket makes. */
function recordingSocket() {
  const calls: Buffer[][] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      calls.push([chunk]);
      cb();
    },
    writev(chunks, cb) {
      calls.push(chunks.map((c) => c.chunk as Buffer));
      cb();
    },
  });
  return { socket, calls };
}

const decodeAll = (bufs: Buffer[]): ControlMessage[] => new ControlFrameReader().push(Buffer.concat(bufs));

/** A gateway channel walked into the open phase (as after AUTH_OK). */
function openGatewayChannel(socket: Duplex): ControlChannel {
  const ch = new ControlChannel(socket, 'gateway', new ManualClock());
  socket.push(encodeControlMessage({ type: 'hello', version: 1, name: 'home', datagramKeyId: 1, resumeKeyId: 0, streamWindow: 65536 }));
  socket.push(encodeControlMessage({ type: 'auth', digest: Buffer.alloc(32) }));
  return ch;
}

test('frames sent in one event-loop turn leave in one write, in order, with their boundaries intact', async () => {
  const { socket, calls } = recordingSocket();
  const ch = new ControlChannel(socket, 'gateway', new ManualClock());
  const sent: ControlMessage[] = [
    { type: 'stream-accept', streamId: 2 },
    { type: 'stream-data', streamId: 2, data: Buffer.from('first') },
    { type: 'window-update', streamId: 4, increment: 4096 },
    { type: 'stream-data', streamId: 4, data: Buffer.alloc(16_384, 7) },
    { type: 'stream-end', streamId: 2 },
  ];
  for (const m of sent) {
    if (m.type === 'stream-data') ch.sendStreamData(m.streamId, m.data);
    else ch.send(m);
  }
  assert.equal(calls.length, 0, 'nothing is written before the end of the turn');
  await new Promise((r) => process.nextTick(r));
  assert.equal(calls.length, 0, 'nor at the end of the tick: a turn spans many socket events');
  assert.ok(ch.backlog > 16_384, 'corked bytes count as backlog (backpressure sees them)');
  await new Promise((r) => setImmediate(r));
  assert.equal(calls.length, 1, 'one write for the whole turn');
  assert.equal(calls[0]!.length, 1, 'of one buffer (a TLS socket would copy a writev into one anyway)');
  assert.deepEqual(decodeAll(calls[0]!), sent);

  // The next turn starts a new batch.
  ch.send({ type: 'stream-reset', streamId: 4, code: 'cancel' });
  await new Promise((r) => setImmediate(r));
  assert.equal(calls.length, 2);
  assert.deepEqual(decodeAll(calls[1]!), [{ type: 'stream-reset', streamId: 4, code: 'cancel' }]);
});

test('a long turn flushes every 64 KiB instead of holding everything until its end', async () => {
  const { socket, calls } = recordingSocket();
  const ch = new ControlChannel(socket, 'gateway', new ManualClock());
  const frame = Buffer.alloc(16_384, 1);
  for (let i = 0; i < 20; i++) ch.sendStreamData(2 + 2 * (i % 3), frame); // 20 frames, about 320 KiB
  const flushedEarly = calls.length;
  assert.ok(flushedEarly >= 4 && flushedEarly <= 5, `${flushedEarly} writes during the turn`);
  assert.ok(ch.backlog < 64 * 1024 + 16_384 + 9, `backlog ${ch.backlog} held back`);
  await new Promise((r) => setImmediate(r));
  const got = decodeAll(calls.flat());
  assert.equal(got.length, 20);
  assert.deepEqual(got.map((m) => (m as { streamId: number }).streamId), Array.from({ length: 20 }, (_, i) => 2 + 2 * (i % 3)));
});

test('destroy right after a send still writes what was sent (an AUTH_ERROR before the close)', () => {
  const { socket, calls } = recordingSocket();
  const ch = new ControlChannel(socket, 'gateway', new ManualClock());
  ch.send({ type: 'auth-error', code: 'wrong-token', message: 'unknown agent' });
  ch.destroy();
  assert.equal(calls.length, 1);
  assert.deepEqual(decodeAll(calls[0]!), [{ type: 'auth-error', code: 'wrong-token', message: 'unknown agent' }]);
});

test('end() writes the frames of this turn before the FIN (a refusal in the handshake)', async () => {
  const { socket, calls } = recordingSocket();
  const ch = new ControlChannel(socket, 'gateway', new ManualClock());
  ch.send({ type: 'goaway', code: 'protocol-error', message: 'bad hello' });
  ch.end();
  await new Promise((r) => socket.once('finish', r));
  assert.deepEqual(decodeAll(calls.flat()), [{ type: 'goaway', code: 'protocol-error', message: 'bad hello' }]);
});

test('close sends GOAWAY before the FIN even while frames are held', async () => {
  const { socket, calls } = recordingSocket();
  const ch = openGatewayChannel(socket);
  await new Promise((r) => setImmediate(r));
  assert.equal(ch.phase, 'open');
  ch.send({ type: 'ping', counter: 9 });
  ch.close('shutting-down', 'bye');
  await new Promise((r) => socket.once('finish', r));
  const got = decodeAll(calls.flat());
  assert.deepEqual(got.map((m) => m.type).slice(-2), ['ping', 'goaway']);
});

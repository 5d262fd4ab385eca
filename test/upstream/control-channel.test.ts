// ControlChannel's timers run on the clock it is given: keepalive PINGs, the keepalive timeout,
// and the linger before a closed socket is destroyed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { ControlFrameReader, type ControlMessage } from '../../src/protocol/tunnel/index.js';
import { ControlChannel } from '../../src/upstream/agent/control-channel.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { duplexOf } from '../helpers/pipes.js';

/** A channel whose peer reads what it sends and never answers or closes. */
function silentPeer() {
  const clock = new ManualClock();
  const out = new PassThrough();
  const socket = duplexOf(new PassThrough(), out);
  const reader = new ControlFrameReader();
  const received: ControlMessage[] = [];
  out.on('data', (c: Buffer) => received.push(...reader.push(c)));
  return { clock, socket, received, channel: new ControlChannel(socket, 'gateway', clock) };
}

const turn = () => new Promise((r) => setImmediate(r));

test('three unanswered PINGs end the channel with keepalive-timeout; the silent socket is destroyed 2 s later on the clock', async () => {
  const { clock, socket, received, channel } = silentPeer();
  channel.startKeepalive(1000);
  clock.advance(3000);
  await turn();
  assert.deepEqual(received.map((m) => m.type), ['ping', 'ping', 'ping']);
  assert.equal(channel.isOpen, true);
  clock.advance(1000);
  await turn();
  assert.deepEqual(await channel.ended, { sent: 'keepalive-timeout' });
  assert.deepEqual(received.at(-1), { type: 'goaway', code: 'keepalive-timeout', message: 'no PONG for 3000ms' });
  assert.equal(socket.writableEnded, true);
  assert.equal(socket.destroyed, false);
  clock.advance(1999);
  assert.equal(socket.destroyed, false);
  clock.advance(1);
  assert.equal(socket.destroyed, true);
  assert.equal(clock.pendingTimers, 0, 'no keepalive or linger timer left');
});

test('a socket that closes before the linger ends cancels it', async () => {
  const { clock, socket, channel } = silentPeer();
  channel.close('shutting-down', 'bye');
  assert.equal(clock.pendingTimers, 1);
  socket.destroy();
  await turn();
  assert.equal(clock.pendingTimers, 0);
});

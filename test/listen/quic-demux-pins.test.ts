import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { QuicDemux, type QuicMember } from '../../src/listen/quic-demux.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** A default route (no `match`) that records what reaches it. */
function defaultMember() {
  const got: string[] = [];
  const member: QuicMember = {
    config: {},
    receiver: {
      onDatagram: (buf, address, port) => void got.push(`${address}:${port} ${buf.toString()}`),
      onSendError: () => {},
    },
  };
  return { member, got };
}

test('quic demux: pins are bounded; a new client past the bound is refused until a pin expires', () => {
  const clock = new ManualClock();
  const events = new EventStream();
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => void seen.push(e));
  const demux = new QuicDemux('udp://127.0.0.1:443', { clock, events, pinIdleMs: () => 1000, maxPins: 2 });
  const { member, got } = defaultMember();
  demux.join(member);
  // Not QUIC: each new client goes to the default route and is pinned to it.
  demux.onDatagram(Buffer.from('a'), '192.0.2.1', 1001);
  demux.onDatagram(Buffer.from('b'), '192.0.2.2', 1002);
  demux.onDatagram(Buffer.from('c'), '192.0.2.3', 1003);
  assert.deepEqual(got, ['192.0.2.1:1001 a', '192.0.2.2:1002 b']);
  const rejected = seen.flatMap((e) => (e.type === 'session-rejected' ? [[e.client.address, e.reason, e.detail]] : []));
  assert.deepEqual(rejected, [['192.0.2.3', 'limit-route-sessions', 'too many QUIC clients pinned']]);
  // A pinned client keeps going to its route.
  demux.onDatagram(Buffer.from('a2'), '192.0.2.1', 1001);
  assert.equal(got.at(-1), '192.0.2.1:1001 a2');
  // Once the pins idle out, the refused client gets one.
  clock.advance(1500);
  demux.onDatagram(Buffer.from('c2'), '192.0.2.3', 1003);
  assert.equal(got.at(-1), '192.0.2.3:1003 c2');
  demux.close();
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataStreamStops } from '../../src/agent/data-stream-stops.js';

/** The agent's data streams by id, for the gateway's STREAM_RESET(cancel) (src/agent/data-stream-stops.ts). */

test('a cancel stops a started data stream; one that comes during the dial stops it when it starts; others are not data streams', () => {
  const stops = new DataStreamStops();
  const stopped: number[] = [];
  const a = stops.track(1);
  a.started(() => stopped.push(1));
  assert.equal(stops.cancel(1), true);
  assert.deepEqual(stopped, [1]);
  a.ended();
  const b = stops.track(3);
  assert.equal(stops.cancel(3), true, 'cancelled while its local dial is under way');
  assert.deepEqual(stopped, [1]);
  b.started(() => stopped.push(3));
  assert.deepEqual(stopped, [1, 3], 'stopped as it starts');
  b.ended();
  assert.equal(stops.cancel(5), false, 'not a data stream: the multiplexer takes the reset');
  const c = stops.track(7);
  c.ended();
  assert.equal(stops.cancel(7), false, 'ended streams are forgotten');
  assert.equal(stops.size, 0);
});

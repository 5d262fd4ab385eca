import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { ManualClock } from '../helpers/manual-clock.js';
import { LiveHub, MAX_EVENTS_PER_TICK, MAX_STREAMS, type LiveTick } from '../../src/admin/live-hub.js';
import { RecentActivity, RECENT_CAPACITY } from '../../src/admin/recent.js';
import { Ring } from '../../src/admin/ring.js';
import type { SluiceEvent } from '../../src/observe/events.js';

/** Enough of a ServerResponse for the hub: records writes, can pretend its socket is full. */
class FakeResponse extends EventEmitter {
  writes: string[] = [];
  writableLength = 0;
  destroyed = false;
  writeHead() {
    return this;
  }
  write(s: string) {
    this.writes.push(s);
    return true;
  }
  end() {
    this.emit('close');
  }
  destroy() {
    this.destroyed = true;
    this.emit('close');
  }
  ticks(): LiveTick[] {
    return this.writes.filter((w) => w.startsWith('event: tick')).map((w) => JSON.parse(w.split('\ndata: ')[1]!) as LiveTick);
  }
}

const rejected = (i: number): SluiceEvent => ({
  type: 'session-rejected',
  at: i,
  route: 'r',
  proto: 'udp',
  client: { address: '198.51.100.7', port: 1000 + (i % 60000), family: 4 },
  reason: 'limit-route-rate',
});

test('live hub: a flood of events is capped per tick and counted; slow streams are skipped, then closed', () => {
  const clock = new ManualClock();
  const hub = new LiveHub({ clock, routes: () => [] });
  for (let i = 0; i < 1000; i++) hub.sink(rejected(i)); // no stream: nothing is kept
  const a = new FakeResponse();
  assert.equal(hub.open(a as unknown as ServerResponse), true);
  assert.equal(a.ticks().length, 1, 'a tick at once');
  for (let i = 0; i < 10_000; i++) hub.sink(rejected(i));
  clock.advance(1000);
  const t = a.ticks()[1]!;
  assert.equal(t.events.length, MAX_EVENTS_PER_TICK);
  assert.equal(t.eventsDropped, 10_000 - MAX_EVENTS_PER_TICK);
  clock.advance(1000);
  assert.deepEqual([a.ticks()[2]!.events.length, a.ticks()[2]!.eventsDropped], [0, 0]);

  a.writableLength = 2 * 1024 * 1024; // the client stopped reading
  const before = a.writes.length;
  clock.advance(9000);
  assert.equal(a.writes.length, before, 'nothing queued for a stream that does not drain');
  assert.equal(a.destroyed, false);
  clock.advance(1000);
  assert.equal(a.destroyed, true, 'closed after 10 missed ticks');
  assert.equal(hub.streams, 0);

  const many = Array.from({ length: MAX_STREAMS + 1 }, () => new FakeResponse());
  const opened = many.map((r) => hub.open(r as unknown as ServerResponse));
  assert.deepEqual(opened.filter((x) => !x).length, 1, 'one over the limit is refused');
  hub.close();
  assert.equal(hub.streams, 0);
});

test('recent activity and ring: bounded, newest first', () => {
  const ring = new Ring<number>(3);
  for (let i = 1; i <= 5; i++) ring.push(i);
  assert.deepEqual(ring.newest(), [5, 4, 3]);
  assert.deepEqual(ring.newest(2), [5, 4]);
  const recent = new RecentActivity();
  for (let i = 0; i < RECENT_CAPACITY * 5; i++) recent.sink(rejected(i));
  assert.equal(recent.denials.size, RECENT_CAPACITY);
  assert.equal(recent.denials.newest(1)[0]!.time, new Date(RECENT_CAPACITY * 5 - 1).toISOString());
});

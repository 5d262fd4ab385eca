import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteTraffic } from '../../src/admin/route-traffic.js';
import type { RouteRuntime, SessionInfo } from '../../src/listen/route.js';
import type { SluiceEvent } from '../../src/observe/events.js';

const client = { address: '198.51.100.7', port: 4000, family: 4 as const };
const route = (name: string, sessions: Partial<SessionInfo>[] = []) =>
  ({ name, sessions: () => sessions.map((s) => ({ bytesFromClient: 0, bytesToClient: 0, packetsFromClient: 0, packetsToClient: 0, ...s })) }) as unknown as RouteRuntime;
const ended = (name: string, id: number, bytes: number): SluiceEvent => ({
  type: 'session-ended', at: 0, flow: { id, route: name, proto: 'udp', client }, upstream: undefined, startedAt: 0, durationMs: 1, reason: 'idle-timeout',
  counters: { bytesFromClient: bytes, bytesToClient: 2 * bytes, packetsFromClient: 1, packetsToClient: 1 },
});

test('route traffic: ended flows plus the open ones, by route name; names of routes gone are forgotten past the cap', () => {
  let routes = [route('dns', [{ bytesFromClient: 5, bytesToClient: 7, packetsFromClient: 1, packetsToClient: 1 }]), route('game')];
  const t = new RouteTraffic(() => routes);
  t.sink(ended('dns', 1, 100));
  t.sink(ended('dns', 2, 10));
  assert.deepEqual(t.of(routes[0]!), { bytesFromClient: 115, bytesToClient: 227, packetsFromClient: 3, packetsToClient: 3 });
  assert.deepEqual(t.of(routes[1]!), { bytesFromClient: 0, bytesToClient: 0, packetsFromClient: 0, packetsToClient: 0 });
  // A route rebuilt under the same name keeps counting; thousands of short-lived names stay bounded.
  routes = [route('dns')];
  for (let i = 0; i < 5000; i++) t.sink(ended(`gone-${i}`, 10 + i, 1));
  assert.equal(t.of(routes[0]!).bytesFromClient, 110, 'a current route is never forgotten');
  assert.ok(t.size <= 4096, `${t.size} names kept`);
});

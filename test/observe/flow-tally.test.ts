import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Transport } from '../../src/core/address.js';
import type { FlowCounters } from '../../src/observe/events.js';
import { FlowTally } from '../../src/observe/flow-tally.js';

const flow = (id: number, route: string, n: number, proto: Transport = 'udp') => ({ id, route, proto, bytesFromClient: 10 * n, packetsFromClient: n, bytesToClient: 20 * n, packetsToClient: n });

/** Polls once and returns what the sink got, by `route/proto`. */
function poll(t: FlowTally, flows: ReturnType<typeof flow>[]): Record<string, FlowCounters> {
  const got: Record<string, FlowCounters> = {};
  t.poll(flows, (route, proto, d) => {
    assert.equal(got[`${route}/${proto}`], undefined, 'one call per series');
    got[`${route}/${proto}`] = d;
  });
  return got;
}

test('each byte and packet is counted once: per poll what grew, summed per route and protocol; the rest at the end', () => {
  const t = new FlowTally();
  assert.deepEqual(poll(t, [flow(1, 'a', 2), flow(2, 'a', 3), flow(3, 'b', 1, 'tcp')]), {
    'a/udp': { bytesFromClient: 50, packetsFromClient: 5, bytesToClient: 100, packetsToClient: 5 },
    'b/tcp': { bytesFromClient: 10, packetsFromClient: 1, bytesToClient: 20, packetsToClient: 1 },
  });
  // Flow 1 grew by 4, flow 2 not at all, flow 3 went (its end is below).
  assert.deepEqual(poll(t, [flow(1, 'a', 6), flow(2, 'a', 3)]), { 'a/udp': { bytesFromClient: 40, packetsFromClient: 4, bytesToClient: 80, packetsToClient: 4 } });
  assert.deepEqual(t.ended(1, flow(1, 'a', 7)), { bytesFromClient: 10, packetsFromClient: 1, bytesToClient: 20, packetsToClient: 1 }, 'the end adds only what the polls had not counted');
  assert.deepEqual(t.ended(9, flow(9, 'a', 2)), { bytesFromClient: 20, packetsFromClient: 2, bytesToClient: 40, packetsToClient: 2 }, 'a flow never polled: all of it at its end');
  // A reading below the last adds nothing (never a negative count).
  assert.deepEqual(poll(t, [flow(2, 'a', 1)]), { 'a/udp': { bytesFromClient: 0, packetsFromClient: 0, bytesToClient: 0, packetsToClient: 0 } });
});

test('a flow missing from two polls in a row is forgotten (its end never came); one missing from a single poll is kept', () => {
  const t = new FlowTally();
  poll(t, [flow(1, 'a', 1), flow(2, 'a', 1)]);
  poll(t, [flow(2, 'a', 1)]);
  assert.equal(t.size, 2, 'flow 1 missed one poll: kept');
  poll(t, [flow(2, 'a', 1)]);
  assert.equal(t.size, 1, 'flow 1 missed two: forgotten');
  assert.equal(t.ended(2, flow(2, 'a', 1)).packetsFromClient, 0);
  assert.equal(t.size, 0);
});

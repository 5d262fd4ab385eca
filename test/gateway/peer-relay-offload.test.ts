import test from 'node:test';
import assert from 'node:assert/strict';
import { RelayedFlowOffloads } from '../../src/gateway/peer-relay-offload.js';
import { DatagramPeerFlow, type DatagramFlowSink, type RelayedLink } from '../../src/gateway/peer-flows.js';
import type { Connectee } from '../../src/gateway/connectee.js';
import { newGatewayCounters } from '../../src/gateway/counters.js';
import { ManualClock } from '../helpers/manual-clock.js';

// When a relayed flow is tried for the gateway's batch (src/gateway/peer-relay-offload.ts); the
// forwarding itself is tested end to end in test/connect/peer-offload.test.ts.

function flowWith(answered: () => boolean) {
  let asked = 0;
  const target = {
    get closed() {
      return false;
    },
    get answered() {
      return answered();
    },
    offloadEnd: () => {
      asked++;
      return null;
    },
  } as unknown as Connectee;
  const link = { name: 'x', offloadEnd: () => null } as unknown as RelayedLink;
  const flow = new DatagramPeerFlow(link, 0x8000_0001, link, 1, {} as DatagramFlowSink);
  flow.channel = target;
  return { flow, asked: () => asked };
}

test('a relayed flow is tried after 4 datagrams, then at most once per sweep period, by the clock, even while no flow is in the batch', () => {
  const clock = new ManualClock();
  const offloads = new RelayedFlowOffloads(newGatewayCounters(), clock);
  let answered = false;
  const x = flowWith(() => answered);
  for (let i = 0; i < 3; i++) offloads.step(x.flow, 0);
  answered = true;
  offloads.step(x.flow, 1);
  assert.equal(x.asked(), 1, 'tried at the 4th datagram');
  offloads.step(x.flow, 0);
  assert.equal(x.asked(), 1, 'not again in the same period');
  // The first try found the target unanswered in another flow; nothing is in the batch, no sweep runs.
  const y = flowWith(() => answered);
  answered = false;
  for (let i = 0; i < 4; i++) offloads.step(y.flow, 0);
  answered = true;
  offloads.step(y.flow, 0);
  assert.equal(y.asked(), 0);
  clock.advance(250);
  offloads.step(y.flow, 0);
  assert.equal(y.asked(), 1, 'tried again in the next period');
  assert.equal(offloads.size, 0);
  y.flow.closed = true;
  clock.advance(250);
  offloads.step(y.flow, 0);
  assert.equal(y.asked(), 1, 'a closed flow is never tried');
});

test("a relayed flow's last counts are folded in when it leaves the batch, send errors too", () => {
  const counters = newGatewayCounters();
  const offloads = new RelayedFlowOffloads(counters, new ManualClock());
  const x = flowWith(() => true);
  const forwarded: number[][] = [];
  const end = { forwarded: (a: number, b: number) => void forwarded.push([a, b]) };
  let closed = 0;
  const o = { datagramsToTarget: 5, bytesToTarget: 500, datagramsToOpener: 2, bytesToOpener: 64, sendErrors: 3, target: end, opener: end, close: () => void closed++ };
  x.flow.offload = o as unknown as typeof x.flow.offload;
  x.flow.offloadSeen = [1, 100, 0, 0, 1];
  offloads.remove(x.flow);
  offloads.remove(x.flow);
  assert.equal(closed, 1, 'closed once');
  assert.equal(x.flow.offload, null);
  assert.deepEqual(
    [counters.peerDatagramsToService, counters.peerBytesToService, counters.peerDatagramsToOpener, counters.peerBytesToOpener, counters.udpSendErrors],
    [4, 400, 2, 64, 2],
  );
  assert.deepEqual(forwarded, [[4, 2], [2, 4]], "each side's tunnel counts, once");
});

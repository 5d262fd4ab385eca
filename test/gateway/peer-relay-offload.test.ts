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

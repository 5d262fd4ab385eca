import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dgramSender } from '../../src/gateway/demux.js';
import { StunBindingServer, stunRoute } from '../../src/gateway/stun-server.js';
import { TURN_PASSWORD, TURN_USER, haveCoturn, startCoturn } from '../turn/coturn.js';
import { udpSocket } from '../turn/udp.js';
import { connectPair } from './support/signalling.js';
import { exchange, reach, udpAgent } from './support/udp-agent.js';

/**
 * Proof 1 of issue 6: two Sluice agents in one process on real loopback sockets, on host
 * candidates and, through a real coturn, on relayed candidates only. Datagrams flow both ways
 * with none lost at a modest rate (2000 each way, bursts of 20 every 2 ms).
 */

test('two agents connect on host candidates over loopback; 2000 datagrams each way, none lost', { timeout: 30_000 }, async (t) => {
  // Sluice's own STUN server for srflx; on loopback the srflx equals the host and is dropped as redundant.
  const stun = await udpSocket(t);
  const server = new StunBindingServer(dgramSender(stun.socket));
  const route = stunRoute(server);
  stun.socket.on('message', (buf, r) => route(buf, { address: r.address, port: r.port }));
  const stunServers = [{ address: '127.0.0.1', port: stun.local.port }];
  const A = await udpAgent(t, { role: 'controlling', stunServers });
  const B = await udpAgent(t, { role: 'controlled', stunServers });
  connectPair(A.agent, B.agent);
  const started = Date.now();
  await Promise.all([A.agent.gather(), B.agent.gather()]);
  await Promise.all([reach(A.agent, 'connected'), reach(B.agent, 'connected')]);
  const ms = Date.now() - started;
  assert.ok(server.counters.answered >= 2, 'both asked the STUN server');
  assert.deepEqual(A.agent.localCandidates.map((c) => c.type), ['host']);
  const sel = A.agent.selectedPair!;
  assert.equal(sel.local.type, 'host');
  assert.equal(sel.remote.type, 'host');
  assert.equal(sel.relayed, false);
  assert.equal(sel.remote.port, B.local.port);
  const r = await exchange(A.agent, B.agent, 2000);
  assert.deepEqual(r, { atA: 2000, atB: 2000, inOrder: true });
  assert.deepEqual(A.other, [], 'nothing on the socket was left unclaimed');
  t.diagnostic(`host: connected in ${ms} ms, rtt ${sel.rttMs} ms`);
});

test('two agents connect through coturn on relayed candidates only; 2000 datagrams each way, none lost', { timeout: 40_000 }, async (t) => {
  if (!haveCoturn(t, 'ICE relay test')) return;
  const coturn = await startCoturn(t);
  const turnServers = [{ server: { address: coturn.address, port: coturn.port }, username: TURN_USER, password: TURN_PASSWORD }];
  const A = await udpAgent(t, { role: 'controlling', policy: 'relay', turnServers });
  const B = await udpAgent(t, { role: 'controlled', policy: 'relay', turnServers });
  connectPair(A.agent, B.agent);
  const started = Date.now();
  await Promise.all([A.agent.gather(), B.agent.gather()]);
  assert.deepEqual(A.agent.localCandidates.map((c) => c.type), ['relay']);
  await Promise.all([reach(A.agent, 'connected'), reach(B.agent, 'connected')]);
  const ms = Date.now() - started;
  const sel = A.agent.selectedPair!;
  assert.equal(sel.local.type, 'relay');
  assert.equal(sel.remote.type, 'relay');
  assert.equal(sel.relayed, true);
  assert.equal(sel.base.port, A.agent.localCandidates[0]!.port, 'sent from the relayed address');
  const r = await exchange(A.agent, B.agent, 2000);
  assert.deepEqual(r, { atA: 2000, atB: 2000, inOrder: true });
  t.diagnostic(`relay: connected in ${ms} ms, rtt ${sel.rttMs} ms`);
  await A.agent.close();
  assert.equal(A.agent.state, 'closed'); // its TURN allocation was deleted on the way (turn-coturn.test.ts checks that step)
});

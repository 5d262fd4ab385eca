import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { PeerAttempt } from '../../src/agent/peer-attempt.js';
import type { CandidateClass } from '../../src/config/expose-config.js';
import { systemClock } from '../../src/core/clock.js';
import { dgramSender } from '../../src/gateway/demux.js';
import { encodeCheckRequest } from '../../src/ice/check-message.js';
import { ICE_DATA_PREFIX } from '../../src/ice/channel.js';
import { sleep, udpClient, waitFor } from '../helpers/net.js';
import { udpSocket } from '../turn/udp.js';

// agent.peerCandidates on a real socket: a peer-reflexive source outside the allowed classes gets
// no answer, is never stored, and its datagrams never reach decryption. The same traffic from an
// allowed class is answered, learned, and decrypted (and fails, being forged): the contrast.

async function attempt(t: TestContext, classes: readonly CandidateClass[]) {
  const { socket, local } = await udpSocket(t);
  let rejected = 0;
  const a = new PeerAttempt(
    { id: 'a1', controlling: false, clock: systemClock, socket: { local, send: dgramSender(socket) }, stunServers: [], turnServers: [], icePolicy: 'all', candidateClasses: classes },
    { signal: () => {}, state: () => {}, data: () => {}, ack: () => {}, rejected: () => void rejected++ },
  );
  t.after(() => a.close());
  socket.on('message', (buf, r) => a.ingress(buf, { address: r.address, port: r.port }));
  a.accept({ ufrag: 'peerufrag', pwd: 'peerpassword0123456789abcd', keyId: 7, key: Buffer.alloc(32, 9).toString('base64') });
  return { a, local, rejected: () => rejected };
}

/** From 127.0.0.1: an authenticated check (the sender knows the ICE password), then a forged sealed datagram. */
async function probe(t: TestContext, target: Awaited<ReturnType<typeof attempt>>) {
  const from = await udpClient(t);
  const { ufrag, pwd } = target.a.ice.localCredentials;
  from.send(target.local.port, encodeCheckRequest({ remoteUfrag: ufrag, localUfrag: 'peerufrag', remotePwd: pwd, priority: 99, role: 'controlling', tieBreaker: 5n, useCandidate: false }));
  await sleep(50);
  from.send(target.local.port, Buffer.concat([Buffer.from([ICE_DATA_PREFIX]), Buffer.alloc(60, 7)]));
  return from;
}

test('peerCandidates: a loopback peer-reflexive source is refused before any work when only public is allowed', async (t) => {
  const target = await attempt(t, ['public']);
  const from = await probe(t, target);
  await waitFor(() => target.a.ice.counters.refusedRequests === 1 && target.a.ice.counters.unknownDataSources === 1, 'refused and counted');
  await sleep(50);
  assert.equal(from.inbox.length, 0, 'no answer');
  assert.equal(target.a.ice.remoteCandidates.length, 0, 'nothing stored');
  assert.equal(target.rejected(), 0, 'its data never reached decryption');
  assert.equal(target.a.ice.replies.counters.replies, 0);
});

test('peerCandidates: the same source is answered and its data decrypted (and refused as forged) when loopback is allowed', async (t) => {
  const target = await attempt(t, ['loopback']);
  const from = await probe(t, target);
  await waitFor(() => target.rejected() === 1, 'the forged datagram reached decryption');
  assert.equal(from.inbox.length, 1, 'the check was answered');
  assert.ok(target.a.ice.remoteCandidates.some((c) => c.type === 'prflx' && c.port === from.port));
  assert.equal(target.a.ice.counters.refusedRequests, 0);
  assert.ok(from.inbox[0]!.length <= 3 * target.a.ice.replies.counters.bytesIn);
});

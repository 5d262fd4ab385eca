import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { encodeCheckRequest } from '../../src/ice/check-message.js';
import { ICE_DATA_PREFIX } from '../../src/ice/channel.js';
import { StunMethod, encodeStunMessage, randomTransactionId, stunMessage, attr, Username } from '../../src/protocol/stun/index.js';
import { sleep, udpClient, waitFor } from '../helpers/net.js';
import { udpAgent } from './support/udp-agent.js';
import { gatewayConfig, startGateway } from '../gateway/expose-helpers.js';
import { Registry } from 'prom-client';
import { registerExposeMetrics } from '../../src/ops/expose-metrics.js';

// Every socket that answers sources it has not verified (the gateway's STUN server, the ICE
// responder) answers at most 3x what it was sent (core/unverified-reply-guard.ts); and an ICE
// agent gives an address its policy refuses no answer, no candidate and no delivery.

/** Unauthenticated or broken STUN a spoofer could send, smallest first. */
function attackDatagrams(): Buffer[] {
  const bare = encodeStunMessage(stunMessage('request', StunMethod.Binding, randomTransactionId(), []));
  const withUser = encodeStunMessage(stunMessage('request', StunMethod.Binding, randomTransactionId(), [attr(Username, 'nobody:here')]));
  const unknownMethod = encodeStunMessage(stunMessage('request', 0x009, randomTransactionId(), []));
  const unknownAttr = Buffer.concat([bare.subarray(0, 20), Buffer.from([0x00, 0x2f, 0x00, 0x04, 1, 2, 3, 4])]);
  unknownAttr.writeUInt16BE(8, 2);
  const brokenAttr = Buffer.concat([bare.subarray(0, 20), Buffer.from([0x00, 0x06, 0x00, 0x08, 1, 2, 3, 4])]);
  brokenAttr.writeUInt16BE(8, 2);
  return [bare, withUser, unknownMethod, unknownAttr, brokenAttr, randomBytes(20), Buffer.from([0, 1, 0, 0])];
}

async function blast(client: Awaited<ReturnType<typeof udpClient>>, port: number, rounds: number): Promise<number> {
  let sent = 0;
  for (let i = 0; i < rounds; i++) {
    for (const d of attackDatagrams()) {
      client.send(port, d);
      sent += d.length;
    }
    await sleep(2);
  }
  return sent;
}

test("gateway STUN server: unauthenticated requests and garbage get at most 3x back, counted by the socket's guard", async (t) => {
  const gw = await startGateway(t, gatewayConfig());
  const c = await udpClient(t);
  const sentBytes = await blast(c, gw.gateway.udpAddress.port, 50);
  const g = gw.gateway.replies.counters;
  await waitFor(() => g.replies + g.refused >= 50 * 5, 'every request handled');
  await sleep(50);
  const back = c.inbox.reduce((n, b) => n + b.length, 0);
  assert.ok(c.inbox.length >= 50 * 4, `answers arrived (${c.inbox.length})`);
  assert.ok(back <= 3 * sentBytes, `${back} bytes out for ${sentBytes} in`);
  assert.equal(g.bytesOut, back);
  assert.ok(g.bytesOut <= 3 * g.bytesIn);
  const registry = new Registry();
  registerExposeMetrics(registry, () => ({ gateway: gw.gateway, agent: undefined }));
  const text = await registry.metrics();
  assert.match(text, new RegExp(`sluice_gateway_unverified_reply_bytes_total\\{direction="out"\\} ${g.bytesOut}\\b`));
  assert.match(text, new RegExp(`sluice_gateway_unverified_replies_total\\{result="sent"\\} ${g.replies}\\b`));
  t.diagnostic(`gateway STUN: ${back} bytes out for ${sentBytes} in (${(back / sentBytes).toFixed(2)}x); ${JSON.stringify(g)}`);
});

test('ICE responder: unauthenticated checks get 400/401 answers within 3x, counted', async (t) => {
  const { agent, local } = await udpAgent(t, { role: 'controlled' });
  const c = await udpClient(t);
  const sentBytes = await blast(c, local.port, 50);
  await waitFor(() => agent.replies.counters.replies + agent.replies.counters.refused >= 50 * 2, 'checks answered');
  await sleep(50);
  const back = c.inbox.reduce((n, b) => n + b.length, 0);
  assert.ok(c.inbox.length > 0);
  assert.ok(back <= 3 * sentBytes, `${back} bytes out for ${sentBytes} in`);
  assert.equal(agent.replies.counters.bytesOut, back);
  t.diagnostic(`ICE responder: ${back} bytes out for ${sentBytes} in (${(back / sentBytes).toFixed(2)}x); ${JSON.stringify(agent.replies.counters)}`);
});

test('ICE: a peer-reflexive address the policy refuses gets no answer, no candidate, and its data is never delivered', async (t) => {
  const refused = await udpClient(t);
  const allowed = await udpClient(t);
  const { agent, local } = await udpAgent(t, { role: 'controlled', remoteAllowed: (_a, port) => port !== refused.port });
  const delivered: Buffer[] = [];
  agent.channel.onDatagram((b) => void delivered.push(Buffer.from(b)));
  const { ufrag, pwd } = agent.localCredentials;
  agent.setRemoteCredentials({ ufrag: 'peerufrag', pwd: 'peerpassword0123456789abcd' });
  const check = () =>
    encodeCheckRequest({ remoteUfrag: ufrag, localUfrag: 'peerufrag', remotePwd: pwd, priority: 1234, role: 'controlling', tieBreaker: 1n, useCandidate: false });

  // The same authenticated check from an allowed address is answered and learned: the contrast.
  allowed.send(local.port, check());
  await allowed.next();
  await waitFor(() => agent.remoteCandidates.some((c) => c.port === allowed.port && c.type === 'prflx'), 'allowed prflx learned');

  refused.send(local.port, check());
  const data = Buffer.concat([Buffer.from([ICE_DATA_PREFIX]), Buffer.from('sealed bytes from a refused address')]);
  refused.send(local.port, data);
  await waitFor(() => agent.counters.refusedRequests === 1 && agent.counters.unknownDataSources === 1, 'refused and counted');
  await sleep(50);
  assert.equal(refused.inbox.length, 0, 'no answer');
  assert.ok(!agent.remoteCandidates.some((c) => c.port === refused.port), 'no candidate stored');
  assert.equal(delivered.length, 0, 'nothing reached the channel (and so decryption)');
});

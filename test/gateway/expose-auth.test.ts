import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { once } from 'node:events';
import { ControlChannel } from '../../src/upstream/agent/control-channel.js';
import { systemClock } from '../../src/core/clock.js';
import {
  TUNNEL_ALPN, computeAuthDigest, exportAuthBinding, type ControlMessage,
} from '../../src/protocol/tunnel/index.js';
import { waitFor } from '../helpers/net.js';
import { TOKEN, agentConfig, gatewayConfig, startAgent, startGateway } from './expose-helpers.js';

test('a wrong token is refused with a clear error on both sides, and counted', async (t) => {
  const gw = await startGateway(t, gatewayConfig());
  const cfg = agentConfig(gw, '    x: { local: 127.0.0.1:9, remote: tcp://127.0.0.1:0 }');
  const { agent, rec } = await startAgent(t, { ...cfg, token: 'not-the-right-token-at-all' });
  await waitFor(() => (agent.counters.refused['wrong-token'] ?? 0) >= 1, 'agent sees wrong-token');
  assert.match(rec.of('agent-disconnected')[0]!.message, /wrong-token/);
  await waitFor(() => (gw.gateway.counters.authRefused['wrong-token'] ?? 0) >= 1, 'gateway counts wrong-token');
  assert.equal(gw.rec.of('gateway-auth-refused')[0]!.agent, 'home');
  assert.equal(gw.gateway.agents().length, 0, 'no agent state for an unauthenticated peer');
  await agent.close();
  await waitFor(() => gw.gateway.pendingHandshakes === 0, 'pre-auth slots released');
});

test('an unknown agent name is refused as unknown-agent', async (t) => {
  const gw = await startGateway(t, gatewayConfig());
  const cfg = agentConfig(gw, '    x: { local: 127.0.0.1:9, remote: tcp://127.0.0.1:0 }');
  const { agent } = await startAgent(t, { ...cfg, name: 'stranger' });
  await waitFor(() => (agent.counters.refused['unknown-agent'] ?? 0) >= 1, 'agent sees unknown-agent');
  await waitFor(() => (gw.gateway.counters.authRefused['unknown-agent'] ?? 0) >= 1, 'gateway counts it');
  assert.equal(gw.gateway.agents().length, 0);
});

test('a wrong certificate pin fails at the agent, and the gateway hears why', async (t) => {
  const gw = await startGateway(t, gatewayConfig());
  const cfg = agentConfig(gw, '    x: { local: 127.0.0.1:9, remote: tcp://127.0.0.1:0 }');
  const { agent, rec } = await startAgent(t, { ...cfg, fingerprint: 'ab'.repeat(32) });
  await waitFor(() => (agent.counters.refused['certificate-mismatch'] ?? 0) >= 1, 'agent refuses the certificate');
  assert.match(rec.of('agent-disconnected')[0]!.message, /pin is sha256:abab/);
  await waitFor(() => (gw.gateway.counters.authRefused['certificate-rejected'] ?? 0) >= 1, 'gateway counts the rejection');
  assert.equal(gw.gateway.agents().length, 0);
});

test('a port outside the range is refused with a clear error on both sides, and counted', async (t) => {
  const gw = await startGateway(t, gatewayConfig());
  const cfg = agentConfig(gw, '    low: { local: 127.0.0.1:9, remote: tcp://127.0.0.1:1000 }');
  const { agent, rec } = await startAgent(t, cfg);
  await waitFor(() => (agent.counters.publishRefused['port-outside-range'] ?? 0) === 1, 'agent sees port-outside-range');
  assert.match(rec.of('agent-publish-refused')[0]!.message, /1000 is outside .*1024-65535/);
  assert.equal(gw.gateway.counters.publishRefused['port-outside-range'], 1);
  assert.equal(gw.rec.of('gateway-publish-refused')[0]!.code, 'port-outside-range');
  assert.equal(agent.state, 'connected', 'the agent stays connected; only that service is refused');
});

/** A hand-driven agent: TLS + HELLO; resolves with the gateway's first answer. */
async function rawHello(port: number) {
  const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: [TUNNEL_ALPN], minVersion: 'TLSv1.3', rejectUnauthorized: false });
  await once(socket, 'secureConnect');
  const channel = new ControlChannel(socket, 'agent', systemClock);
  const inbox: ControlMessage[] = [];
  channel.onMessage((m) => inbox.push(m));
  channel.send({ type: 'hello', version: 1, name: 'home', datagramKeyId: 7, resumeKeyId: 0, streamWindow: 65536 });
  await waitFor(() => inbox.length > 0, 'answer to HELLO');
  return { socket, channel, inbox, first: inbox.shift()! };
}

/** TLS, HELLO and the CHALLENGE, with what is needed to answer it. */
async function rawHandshake(port: number) {
  const h = await rawHello(port);
  assert.equal(h.first.type, 'challenge');
  return { ...h, nonce: Buffer.from((h.first as { nonce: Buffer }).nonce), binding: exportAuthBinding(h.socket) };
}

test('an AUTH captured on one connection is refused on another (no replay)', async (t) => {
  const gw = await startGateway(t, gatewayConfig());
  const first = await rawHandshake(gw.port);
  t.after(() => first.socket.destroy());
  const digest = computeAuthDigest({ token: TOKEN, nonce: first.nonce, binding: first.binding, agentName: 'home' });
  const second = await rawHandshake(gw.port);
  t.after(() => second.socket.destroy());
  second.channel.send({ type: 'auth', digest });
  await waitFor(() => second.inbox.length > 0, 'answer to the replay');
  assert.deepEqual(second.inbox[0]!.type === 'auth-error' && second.inbox[0]!.code, 'wrong-token');
  // The honest answer on its own connection still works.
  first.channel.send({ type: 'auth', digest });
  await waitFor(() => first.inbox.length > 0, 'answer to the honest agent');
  assert.equal(first.inbox[0]!.type, 'auth-ok');
});

test('failed authentications from one address back off; pre-auth connections are capped and timed out', async (t) => {
  const gw = await startGateway(
    t,
    gatewayConfig('  handshakeTimeout: 300ms\n  maxHandshakesPerSource: 3\n  authBackoff: { after: 2, initial: 10s, max: 60s }\n'),
  );
  for (let i = 0; i < 2; i++) {
    const h = await rawHandshake(gw.port);
    h.channel.send({ type: 'auth', digest: Buffer.alloc(32) });
    await waitFor(() => h.inbox.length > 0, 'refusal');
    h.socket.destroy();
  }
  const h = await rawHello(gw.port);
  // The third HELLO is answered at once with rate-limited, before any verification.
  assert.equal(h.first.type === 'goaway' && h.first.code, 'rate-limited');
  await waitFor(() => (gw.gateway.counters.authRefused['rate-limited'] ?? 0) === 1, 'rate-limited');
  h.socket.destroy();

  // Silent peers: three hold the per-source cap, a fourth is closed before TLS.
  const net = await import('node:net');
  const silent = await Promise.all([0, 1, 2].map(async () => {
    const s = net.connect(gw.port, '127.0.0.1');
    s.on('error', () => {});
    await once(s, 'connect');
    return s;
  }));
  t.after(() => silent.forEach((s) => s.destroy()));
  await waitFor(() => gw.gateway.pendingHandshakes === 3, 'three pending');
  const fourth = net.connect(gw.port, '127.0.0.1');
  fourth.on('error', () => {});
  await once(fourth, 'close');
  assert.equal(gw.gateway.counters.preAuthCapped, 1);
  // TLS never completes for a silent peer: the TLS handshake timeout frees the slots.
  await waitFor(() => gw.gateway.pendingHandshakes === 0, 'slots freed by the handshake timeout', 3000);
  assert.equal(gw.gateway.agents().length, 0);
});

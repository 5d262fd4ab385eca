import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type tls from 'node:tls';
import {
  ControlFrameReader, DatagramOpener, DatagramSealer, PRE_AUTH_MAX_FRAME_BYTES, TUNNEL_ALPN, TUNNEL_PROTOCOL_VERSION, computeAuthDigest,
  computeGatewayProof, createChallengeNonce, encodeControlMessage, exportAuthBinding, exportDatagramKeys, initialPhase, maxFrameBytesFor,
  receiveTransition, verifyAuthDigest, verifyGatewayProof, type ControlMessage, type ControlPhase,
} from '../../../src/protocol/tunnel/index.js';
import { makeTestCertificate, tlsPair } from './tls-pair.js';
import { assertTunnelError } from './helpers.js';

/** The protocol over a real TLS 1.3 connection on loopback: binding, keys, handshake, no replay. */

const creds = makeTestCertificate();
const skip = creds ? false : 'openssl CLI not available to make a test certificate';
const TOKEN = 'correct horse battery staple';

/** Reads the next control message from a socket through a frame reader that follows the phase. */
function messages(sock: tls.TLSSocket, role: 'agent' | 'gateway') {
  const reader = new ControlFrameReader({ maxFrameBytes: PRE_AUTH_MAX_FRAME_BYTES });
  let phase: ControlPhase = initialPhase(role);
  const queue: ControlMessage[] = [];
  const waiters: ((m: ControlMessage) => void)[] = [];
  sock.on('data', (chunk: Buffer) => {
    for (const m of reader.push(chunk)) {
      phase = receiveTransition(role, phase, m.type);
      reader.maxFrameBytes = maxFrameBytesFor(phase);
      const w = waiters.shift();
      if (w) w(m);
      else queue.push(m);
    }
  });
  return {
    next: () => new Promise<ControlMessage>((resolve) => (queue.length ? resolve(queue.shift()!) : waiters.push(resolve))),
    get phase() {
      return phase;
    },
  };
}

test('both ends of one TLS session derive the same binding and mirrored datagram keys; another session derives others', { skip }, async (t) => {
  const a = await tlsPair(t, creds!);
  const b = await tlsPair(t, creds!);
  assert.equal(a.agent.getProtocol(), 'TLSv1.3');
  assert.equal(a.agent.alpnProtocol, TUNNEL_ALPN);

  assert.deepEqual(exportAuthBinding(a.agent), exportAuthBinding(a.gateway));
  const agentKeys = exportDatagramKeys(a.agent, 'agent');
  const gatewayKeys = exportDatagramKeys(a.gateway, 'gateway');
  assert.deepEqual(agentKeys.send, gatewayKeys.receive);
  assert.deepEqual(agentKeys.receive, gatewayKeys.send);
  assert.notDeepEqual(agentKeys.send, agentKeys.receive);
  assert.equal(agentKeys.sendDirection, 'agent-to-gateway');
  assert.equal(gatewayKeys.sendDirection, 'gateway-to-agent');

  assert.notDeepEqual(exportAuthBinding(b.agent), exportAuthBinding(a.agent));
  const otherKeys = exportDatagramKeys(b.gateway, 'gateway');
  assert.notDeepEqual(otherKeys.receive, gatewayKeys.receive);
  assert.notDeepEqual(exportAuthBinding(a.agent), agentKeys.send.subarray(0, 32), 'labels separate the binding from the keys');

  // datagrams: up and down in session a; a datagram of session a does not open in session b
  const up = new DatagramSealer({ key: agentKeys.send, direction: agentKeys.sendDirection, peerKeyId: 77 });
  const down = new DatagramSealer({ key: gatewayKeys.send, direction: gatewayKeys.sendDirection, peerKeyId: 88 });
  const gwOpen = new DatagramOpener({ key: gatewayKeys.receive, direction: gatewayKeys.receiveDirection, keyId: 77 });
  const agentOpen = new DatagramOpener({ key: agentKeys.receive, direction: agentKeys.receiveDirection, keyId: 88 });
  const otherOpen = new DatagramOpener({ key: otherKeys.receive, direction: otherKeys.receiveDirection, keyId: 77 });
  const ka = up.sealKeepalive(1);
  assert.deepEqual(otherOpen.open(ka), { ok: false, reason: 'auth-failed' });
  const opened = gwOpen.open(ka);
  assert.ok(opened.ok && opened.datagram.kind === 'keepalive' && opened.datagram.newest);
  const ack = agentOpen.open(down.sealKeepaliveAck(1));
  assert.ok(ack.ok && ack.datagram.kind === 'keepalive-ack' && ack.datagram.counter === 1);
});

test('the challenge-response handshake over TLS: HELLO, CHALLENGE, AUTH, AUTH_OK with the gateway proof', { skip }, async (t) => {
  const { agent, gateway } = await tlsPair(t, creds!);
  const atGateway = messages(gateway, 'gateway');
  const atAgent = messages(agent, 'agent');

  agent.write(encodeControlMessage({ type: 'hello', version: TUNNEL_PROTOCOL_VERSION, name: 'home', datagramKeyId: 77, resumeKeyId: 0, streamWindow: 262_144 }));
  const hello = await atGateway.next();
  assert.equal(hello.type, 'hello');
  assert.equal(atGateway.phase, 'await-auth');
  const nonce = createChallengeNonce();
  gateway.write(encodeControlMessage({ type: 'challenge', nonce }));

  const challenge = await atAgent.next();
  assert.ok(challenge.type === 'challenge');
  const agentInput = { token: TOKEN, nonce: challenge.nonce, binding: exportAuthBinding(agent), agentName: 'home' };
  agent.write(encodeControlMessage({ type: 'auth', digest: computeAuthDigest(agentInput) }));

  const auth = await atGateway.next();
  assert.ok(auth.type === 'auth' && hello.type === 'hello');
  const gatewayInput = { token: TOKEN, nonce, binding: exportAuthBinding(gateway), agentName: hello.name };
  assert.equal(verifyAuthDigest(gatewayInput, auth.digest), true);
  assert.equal(verifyAuthDigest({ ...gatewayInput, token: 'wrong' }, auth.digest), false, 'a wrong token fails');
  assert.equal(atGateway.phase, 'open');
  gateway.write(encodeControlMessage({
    type: 'auth-ok', datagramKeyId: 88, resumed: false, streamWindow: 262_144, keepaliveIntervalMs: 25_000, proof: computeGatewayProof(gatewayInput),
  }));

  const ok = await atAgent.next();
  assert.ok(ok.type === 'auth-ok');
  assert.equal(verifyGatewayProof(agentInput, ok.proof), true);
  assert.equal(atAgent.phase, 'open');
});

test('an answer captured on one TLS session fails on another, even under the same nonce (replay and relay)', { skip }, async (t) => {
  const s1 = await tlsPair(t, creds!);
  const s2 = await tlsPair(t, creds!);
  const nonce = createChallengeNonce();
  const captured = computeAuthDigest({ token: TOKEN, nonce, binding: exportAuthBinding(s1.agent), agentName: 'home' });
  assert.equal(verifyAuthDigest({ token: TOKEN, nonce, binding: exportAuthBinding(s1.gateway), agentName: 'home' }, captured), true);

  // replay on a later connection: the gateway issues a fresh nonce, and its binding differs
  const fresh = createChallengeNonce();
  assert.equal(verifyAuthDigest({ token: TOKEN, nonce: fresh, binding: exportAuthBinding(s2.gateway), agentName: 'home' }, captured), false);
  // even a gateway that repeated the nonce would refuse it: the binding is per connection
  assert.equal(verifyAuthDigest({ token: TOKEN, nonce, binding: exportAuthBinding(s2.gateway), agentName: 'home' }, captured), false);
  // relay: a man in the middle holds TLS session s2 to the gateway and s1 to the agent; he forwards
  // the gateway's nonce to the agent, and the agent's answer (bound to s1) fails on s2
  const relayedAnswer = computeAuthDigest({ token: TOKEN, nonce: fresh, binding: exportAuthBinding(s1.agent), agentName: 'home' });
  assert.equal(verifyAuthDigest({ token: TOKEN, nonce: fresh, binding: exportAuthBinding(s2.gateway), agentName: 'home' }, relayedAnswer), false);
  // and the answer does not carry over to another agent name on the same session
  assert.equal(verifyAuthDigest({ token: TOKEN, nonce, binding: exportAuthBinding(s1.gateway), agentName: 'office' }, captured), false);
});

test('a TLS 1.2 session cannot bind the tunnel', { skip }, async (t) => {
  const { agent, gateway } = await tlsPair(t, creds!, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
  assert.equal(agent.getProtocol(), 'TLSv1.2');
  assertTunnelError(() => exportAuthBinding(agent), 'tls-binding');
  assertTunnelError(() => exportDatagramKeys(gateway, 'gateway'), 'tls-binding');
});

test('a pre-auth gateway reader refuses an over-long first frame sent over TLS', { skip }, async (t) => {
  const { agent, gateway } = await tlsPair(t, creds!);
  const reader = new ControlFrameReader({ maxFrameBytes: PRE_AUTH_MAX_FRAME_BYTES });
  const bad = Buffer.alloc(8);
  bad.writeUInt32BE(1 << 20, 0);
  agent.write(bad);
  const [chunk] = (await once(gateway, 'data')) as [Buffer];
  assertTunnelError(() => reader.push(chunk), 'frame-too-large');
});

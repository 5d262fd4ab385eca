import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { once } from 'node:events';
import { systemClock } from '../../src/core/clock.js';
import { TUNNEL_ALPN } from '../../src/protocol/tunnel/index.js';
import { connectToGateway } from '../../src/agent/gateway-connection.js';
import { TOKEN, gatewayConfig, startGateway } from './expose-helpers.js';
import { makeTestCertificate } from '../protocol/tunnel/tls-pair.js';
import { havePeer } from '../helpers/peers.js';
import { waitFor } from '../helpers/net.js';

/** A TLS client with Node's defaults (AES-256-GCM first), as an agent of an earlier version. */
async function cipherWith(port: number, ciphers?: string): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: [TUNNEL_ALPN], minVersion: 'TLSv1.3', rejectUnauthorized: false, ...(ciphers ? { ciphers } : {}) });
  try {
    await once(socket, 'secureConnect');
    return socket.getCipher().name;
  } finally {
    socket.destroy();
  }
}

test("the gateway's suite order wins: AES-128-GCM for a client that prefers AES-256-GCM", async (t) => {
  const gw = await startGateway(t, gatewayConfig());
  assert.equal(await cipherWith(gw.port), 'TLS_AES_128_GCM_SHA256');
});

test('a client that offers only AES-256-GCM or only ChaCha20-Poly1305 still connects with it', async (t) => {
  const gw = await startGateway(t, gatewayConfig());
  assert.equal(await cipherWith(gw.port, 'TLS_AES_256_GCM_SHA384'), 'TLS_AES_256_GCM_SHA384');
  assert.equal(await cipherWith(gw.port, 'TLS_CHACHA20_POLY1305_SHA256'), 'TLS_CHACHA20_POLY1305_SHA256');
});

test("the agent offers AES-128-GCM first: a server that follows the client's order picks it", async (t) => {
  if (!havePeer(t, 'openssl', 'openssl')) return;
  const creds = makeTestCertificate()!;
  // (Node's default server, as earlier gateways, picks by its own order: AES-256-GCM with any client.)
  const server = tls.createServer({ ...creds, minVersion: 'TLSv1.3', honorCipherOrder: false, ALPNProtocols: [TUNNEL_ALPN] });
  const seen: string[] = [];
  server.on('secureConnection', (s) => {
    seen.push(s.getCipher().name);
    s.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const ac = new AbortController();
  t.after(() => ac.abort());
  const port = (server.address() as { port: number }).port;
  // The connection fails after TLS (a pin that does not match); the suite is what is checked.
  await connectToGateway({
    host: '127.0.0.1', port, name: 'home', token: TOKEN, fingerprint: 'ab'.repeat(32), ca: undefined, serverName: undefined,
    datagramKeyId: 1, resumeKeyId: 0, streamWindow: 65536, timeoutMs: 5000, clock: systemClock, signal: ac.signal,
  }).then(
    () => assert.fail('a gateway with another certificate than the pin cannot be accepted'),
    () => undefined,
  );
  // The client's Finished went out before it checked the pin: the server completes its side.
  await waitFor(() => seen.length > 0, 'the server completed the handshake');
  assert.deepEqual(seen, ['TLS_AES_128_GCM_SHA256']);
});

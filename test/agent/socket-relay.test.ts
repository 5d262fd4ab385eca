import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { SocketRelayOutcome } from '../../src/upstream/dialer.js';
import type { TunnelStream } from '../../src/upstream/agent/tunnel-stream.js';
import { tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { pair } from './mux-pair.js';

/**
 * A tunnel stream relaying a real loopback socket by itself (socket-relay.ts): `g` is the
 * gateway's end (a Duplex), the agent's end `a` relays `sock`, whose peer is the client `cli`.
 */
async function relayed(t: TestContext, window: number, before?: (g: TunnelStream, a: TunnelStream) => Promise<void>) {
  const p = await pair(window);
  const g = await p.open();
  const a = p.accepted[0]!;
  if (before) await before(g, a);
  const sockets: net.Socket[] = [];
  const server = await tcpServer(t, (s) => sockets.push(s));
  const cli = await tcpConnect(t, server.port);
  await waitFor(() => sockets.length === 1, 'accepted');
  const sock = sockets[0]!;
  const outcomes: SocketRelayOutcome[] = [];
  const stop = a.relaySocket(sock, 0, (o) => outcomes.push(o));
  assert.ok(stop, 'an idle stream relays the socket itself');
  return { ...p, g, a, sock, cli, stop, outcomes };
}

test('socket relay: bytes both ways, each FIN forwarded on its own, a clean finish without a reset', async (t) => {
  const r = await relayed(t, 64 * 1024);
  let gError: Error | undefined;
  r.g.on('error', (e) => (gError = e));
  const atGateway: Buffer[] = [];
  r.g.on('data', (c: Buffer) => atGateway.push(c));
  r.cli.write('up');
  await waitFor(() => Buffer.concat(atGateway).toString() === 'up', 'client bytes at the gateway');
  r.cli.end(); // the client's FIN; it still reads
  await once(r.g, 'end');
  const atClient: Buffer[] = [];
  r.cli.on('data', (c: Buffer) => atClient.push(c));
  r.g.end('down after the client FIN');
  await once(r.cli, 'end');
  assert.equal(Buffer.concat(atClient).toString(), 'down after the client FIN');
  await waitFor(() => r.outcomes.length === 1, 'relay done');
  assert.deepEqual(r.outcomes[0], { reason: 'client-closed', bytesFromClient: 2, bytesToClient: 25 });
  await waitFor(() => r.gm.size === 0 && r.am.size === 0, 'both stream ids released');
  assert.equal(gError, undefined, 'finished, not reset');
});

test('socket relay: a client that does not read holds at most the window in the relay; every byte arrives after', async (t) => {
  const window = 64 * 1024;
  const r = await relayed(t, window);
  r.cli.pause();
  const total = 32 * 1024 * 1024;
  const payload = Buffer.alloc(total);
  for (let i = 0; i < total; i += 4096) payload[i] = (i >> 12) & 0xff;
  r.g.end(payload);
  await waitFor(() => r.sock.writableLength > 0, 'the kernel buffers are full and the relay holds bytes', 20_000);
  for (let turn = 0; turn < 50; turn++) {
    assert.ok(r.sock.writableLength <= 2 * window, `turn ${turn}: the relay holds ${r.sock.writableLength} bytes, above twice the window`);
    await new Promise((res) => setImmediate(res));
  }
  assert.ok(r.g.writableLength > 0, 'the writer waits for credit');
  assert.ok(r.g.bytesWritten < total, 'the sender stalled');
  const chunks: Buffer[] = [];
  r.cli.on('data', (c: Buffer) => chunks.push(c));
  r.cli.resume();
  await once(r.cli, 'end');
  assert.ok(Buffer.concat(chunks).equals(payload), 'every byte, in order');
});

test('socket relay: a reset from the peer destroys the socket; stopping the relay resets the peer', async (t) => {
  const r = await relayed(t, 64 * 1024);
  r.cli.resume();
  const ended = new Promise((res) => r.cli.once('end', res));
  r.g.destroy(); // STREAM_RESET cancel toward the agent
  await ended; // the relay closed the socket
  await waitFor(() => r.outcomes.length === 1, 'relay done');
  assert.equal(r.outcomes[0]!.reason, 'upstream-error');

  const s = await relayed(t, 64 * 1024);
  const reset = once(s.g, 'error');
  s.stop('shutdown');
  const [e] = (await reset) as [Error & { resetCode?: string }];
  assert.equal(e.resetCode, 'cancel');
  await waitFor(() => s.outcomes.length === 1, 'relay done');
  assert.equal(s.outcomes[0]!.reason, 'shutdown');
});

test('socket relay: bytes and a FIN that arrived before the relay started are handed to the socket first', async (t) => {
  const r = await relayed(t, 64 * 1024, async (g, a) => {
    g.end('sent before the local service answered');
    await waitFor(() => a.readableLength > 0 && a.readableEnded === false, 'buffered at the agent');
    await waitFor(() => a.bytesRead === 38, 'all of it');
  });
  const chunks: Buffer[] = [];
  r.cli.on('data', (c: Buffer) => chunks.push(c));
  await once(r.cli, 'end');
  assert.equal(Buffer.concat(chunks).toString(), 'sent before the local service answered');
});

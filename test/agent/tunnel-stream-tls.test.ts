import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { BandwidthGate } from '../../src/admission/bandwidth-limiter.js';
import { PACED_CHUNK_BYTES, pipeLimited } from '../../src/session/limited-pipe.js';
import { MAX_STREAM_DATA_BYTES, encodeControlMessage } from '../../src/protocol/tunnel/index.js';
import { systemClock } from '../../src/core/clock.js';
import { ControlChannel } from '../../src/upstream/agent/control-channel.js';
import { StreamMux } from '../../src/upstream/agent/stream-mux.js';
import type { TunnelStream } from '../../src/upstream/agent/tunnel-stream.js';
import { waitFor } from '../helpers/net.js';
import { havePeer } from '../helpers/peers.js';
import { makeTestCertificate, tlsPair } from '../protocol/tunnel/tls-pair.js';

const EP = { address: '192.0.2.7', port: 40000, family: 4 as const };
const creds = makeTestCertificate();

/**
 * Two multiplexers over a real TLS connection on loopback (records of 16 KiB, reads that end
 * mid-frame), walked into the open phase as after AUTH_OK.
 */
async function tlsMux(t: TestContext, window: number) {
  const { agent, gateway } = await tlsPair(t, creds!);
  agent.setNoDelay(true);
  gateway.setNoDelay(true);
  const gc = new ControlChannel(gateway, 'gateway', systemClock);
  const ac = new ControlChannel(agent, 'agent', systemClock);
  agent.write(encodeControlMessage({ type: 'hello', version: 1, name: 'home', datagramKeyId: 1, resumeKeyId: 0, streamWindow: window }));
  agent.write(encodeControlMessage({ type: 'auth', digest: Buffer.alloc(32) }));
  gateway.write(encodeControlMessage({ type: 'challenge', nonce: Buffer.alloc(32) }));
  gateway.write(encodeControlMessage({ type: 'auth-ok', datagramKeyId: 2, resumed: false, streamWindow: window, keepaliveIntervalMs: 1000, proof: Buffer.alloc(32) }));
  await waitFor(() => gc.phase === 'open' && ac.phase === 'open', 'both phases open');
  const accepted: TunnelStream[] = [];
  const gm = new StreamMux(gc, { role: 'gateway', localWindow: window, peerWindow: window, maxStreams: 16 });
  const am = new StreamMux(ac, { role: 'agent', localWindow: window, peerWindow: window, maxStreams: 16 }, (s) => {
    accepted.push(s);
    am.accept(s);
  });
  gc.onMessage((m) => void gm.handle(m));
  const seen = { dataAtAgent: 0 };
  ac.onMessage((m) => {
    if (m.type === 'stream-data') seen.dataAtAgent++;
    am.handle(m);
  });
  const open = async () => {
    const g = await gm.open(1, EP, EP, 5000, new AbortController().signal);
    await waitFor(() => accepted.length > 0, 'the agent has the stream');
    return { g, a: accepted.at(-1)! };
  };
  return { gm, am, open, seen };
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function collect(s: TunnelStream): { chunks: Buffer[]; ended: Promise<unknown> } {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return { chunks, ended: once(s, 'end') };
}

test('bulk over TLS: bytes intact both ways; frame pieces of one read reach the reader merged', async (t) => {
  if (!havePeer(t, 'openssl', 'openssl')) return;
  const { open, gm, am, seen } = await tlsMux(t, 256 * 1024);
  const { g, a } = await open();
  const up = pattern(4 * 1024 * 1024 + 123, 1);
  const down = pattern(3 * 1024 * 1024 + 7, 2);
  const atAgent = collect(a);
  const atGateway = collect(g);
  g.end(up);
  a.end(down);
  await Promise.all([atAgent.ended, atGateway.ended]);
  assert.ok(Buffer.concat(atAgent.chunks).equals(up), 'gateway -> agent bytes differ');
  assert.ok(Buffer.concat(atGateway.chunks).equals(down), 'agent -> gateway bytes differ');
  // A frame that spans two TLS records reaches the agent as two STREAM_DATA pieces; pieces of
  // one socket read are pushed merged, up to 64 KiB (one write for up to four frames).
  const biggest = Math.max(...atAgent.chunks.map((c) => c.length));
  assert.ok(biggest <= 64 * 1024, `a chunk of ${biggest} bytes`);
  assert.ok(biggest > MAX_STREAM_DATA_BYTES, `no chunk merged more than one frame (biggest ${biggest} bytes)`);
  assert.ok(atAgent.chunks.length < seen.dataAtAgent, `${atAgent.chunks.length} chunks from ${seen.dataAtAgent} data pieces: nothing merged`);
  assert.ok(seen.dataAtAgent > Math.ceil(up.length / MAX_STREAM_DATA_BYTES), 'no frame spanned two TLS records (the reader split nothing)');
  await waitFor(() => gm.size === 0 && am.size === 0, 'both ends forget the finished stream');
});

test('a paced consumer (limited-pipe) gets chunks of at most one frame; every byte arrives in order', async (t) => {
  if (!havePeer(t, 'openssl', 'openssl')) return;
  const { open, seen } = await tlsMux(t, 256 * 1024);
  const { g, a } = await open();
  const up = pattern(2 * 1024 * 1024 + 5, 4);
  // A gate that never makes anyone wait: only the chunk bound it asks of its source is under test.
  const sink = new PassThrough({ highWaterMark: 1024 * 1024 });
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  pipeLimited(a, sink, new BandwidthGate(null, null, null, systemClock), systemClock);
  assert.equal(a.maxChunkBytes, PACED_CHUNK_BYTES);
  g.end(up);
  await once(sink, 'end');
  assert.ok(Buffer.concat(chunks).equals(up), 'bytes differ');
  const biggest = Math.max(...chunks.map((c) => c.length));
  assert.ok(biggest <= PACED_CHUNK_BYTES, `a chunk of ${biggest} bytes`);
  assert.ok(chunks.length < seen.dataAtAgent, `${chunks.length} chunks from ${seen.dataAtAgent} pieces: split frames were not joined`);
});

test('a stalled reader over TLS holds at most its window; the writer waits, then everything arrives', async (t) => {
  if (!havePeer(t, 'openssl', 'openssl')) return;
  const window = 64 * 1024;
  const { open } = await tlsMux(t, window);
  const { g, a } = await open();
  const total = 8 * 1024 * 1024;
  const data = pattern(total, 3);
  let offered = 0;
  let blocked = false;
  // Writes until the stream pushes back; nobody reads at the agent.
  while (offered < total) {
    const ok = g.write(data.subarray(offered, offered + 64 * 1024));
    offered += 64 * 1024;
    if (!ok) {
      blocked = true;
      break;
    }
  }
  assert.ok(blocked, 'the writer was never told to wait');
  await waitFor(() => g.bytesWritten === window, 'the sender spent its whole window');
  // The window's bytes are at the agent now (after the socket read that carried them).
  await waitFor(() => a.readableLength === window, 'the receiver buffered the window');
  assert.ok(g.bytesWritten <= window, `sent ${g.bytesWritten} of credit ${window}`);
  assert.ok(g.writableLength <= 2 * 64 * 1024, `the writer buffered ${g.writableLength} bytes`);
  // Then the reader drains and the rest follows.
  const rest = data.subarray(offered);
  const got = collect(a);
  const finish = async () => {
    for (let i = 0; i < rest.length; i += 64 * 1024) {
      if (!g.write(rest.subarray(i, i + 64 * 1024))) await once(g, 'drain');
    }
    g.end();
  };
  await Promise.all([got.ended, finish()]);
  assert.ok(Buffer.concat(got.chunks).equals(data), 'bytes differ after the stall');
});

test('over TLS: data and FIN sent in one tick arrive in order; the other half stays open; a reset is forwarded', async (t) => {
  if (!havePeer(t, 'openssl', 'openssl')) return;
  const { open } = await tlsMux(t, 256 * 1024);
  const { g, a } = await open();
  const atAgent = collect(a);
  const payload = pattern(100_000, 4);
  g.write(payload.subarray(0, 50_000));
  g.end(payload.subarray(50_000)); // data, more data and STREAM_END in one coalesced write
  await atAgent.ended;
  assert.ok(Buffer.concat(atAgent.chunks).equals(payload));
  assert.equal(a.destroyed, false, 'the agent may still answer after the FIN');
  const atGateway = collect(g);
  a.write('still open');
  await waitFor(() => Buffer.concat(atGateway.chunks).toString() === 'still open', 'the reply crosses the half-closed stream');

  // A second stream: the agent destroys it mid-transfer; the gateway sees a reset, not an end.
  const second = await open();
  second.g.on('data', () => {});
  const err = once(second.g, 'error');
  second.a.write(pattern(40_000, 5));
  second.a.destroy();
  const [e] = (await err) as [Error & { resetCode?: string }];
  assert.equal(e.resetCode, 'cancel');
});

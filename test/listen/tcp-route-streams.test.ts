import { test as plainTest, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { readAll, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { havePeer } from '../helpers/peers.js';
import { nativeStreamCase, perStreamDatapath } from '../datapath/stream-datapaths.js';
import type { StreamDatapath } from '../../src/datapath/stream-datapath.js';
import { decodeProxyHeader } from '../../src/protocol/proxy-protocol/index.js';
import { startNode as startPlainNode } from '../helpers/node.js';
import { pumpingUpstream } from './pumping-upstream.js';
import type { StreamDialer } from '../../src/upstream/dialer.js';
import { Duplex } from 'node:stream';

/** A Duplex over a socket that is not itself a socket: what a tunnel stream looks like to a route. */
class PassThroughDuplex extends Duplex {
  constructor(private readonly inner: net.Socket) {
    super({ allowHalfOpen: true });
    inner.on('data', (d: Buffer) => this.push(d) || inner.pause());
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => this.destroy());
  }
  override _read(): void {
    this.inner.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.inner.write(chunk, cb);
  }
  override _final(cb: () => void): void {
    this.inner.end(cb);
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}

// Failure modes and lifetimes of TCP routes, once per stream datapath ("[js]", "[native]").
const { test, startNode, datapathOf } = perStreamDatapath();

const route = (upstream: number, extra = '') => `
routes:
  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream}
${extra}
`;

test('tcp streams: a client RST mid-stream ends the connection as client-error and closes the upstream side', async (t) => {
  const up = await tcpServer(t);
  const n = await startNode(t, route(up.port));
  const c = await tcpConnect(t, n.port('ssh'));
  c.write('ping');
  await once(c, 'data');
  c.resetAndDestroy();
  await waitFor(() => n.ofType('session-ended').length === 1, 'end event');
  const end = n.ofType('session-ended')[0]!;
  assert.equal(end.reason, 'client-error');
  assert.equal(end.counters.bytesFromClient, 4);
  assert.equal(end.counters.bytesToClient, 4);
  await waitFor(() => up.sockets.size === 0, 'upstream side closed');
  assert.equal(n.node.route('ssh')!.active, 0);
});

test('tcp streams: an upstream RST mid-stream ends the connection as upstream-error and closes the client', async (t) => {
  const up = await tcpServer(t, (s) => {
    s.once('data', () => {
      s.write('partial');
      setTimeout(() => s.resetAndDestroy(), 50);
    });
  });
  const n = await startNode(t, route(up.port));
  const c = await tcpConnect(t, n.port('ssh'));
  c.write('go');
  const got = await readAll(c).catch(() => Buffer.from('partial'));
  assert.equal(got.toString(), 'partial');
  await waitFor(() => n.ofType('session-ended').length === 1, 'end event');
  assert.equal(n.ofType('session-ended')[0]!.reason, 'upstream-error');
  assert.equal(n.ofType('session-ended')[0]!.counters.bytesToClient, 7);
});

test('tcp streams: an upstream that accepts nothing is given up at connectTimeout (SLUICE_ERR_DIAL_TIMEOUT)', async (t) => {
  if (!havePeer(t, 'python3', 'python3-minimal')) return;
  const port = await fullBacklogListener(t);
  const n = await startNode(t, route(port, '    tcp: { connectTimeout: 300ms }'));
  const c = await tcpConnect(t, n.port('ssh'));
  const started = Date.now();
  await new Promise((resolve) => c.once('end', resolve).once('close', resolve)); // a FIN or a RST
  const took = Date.now() - started;
  assert.ok(took >= 250 && took < 3000, `closed after ${took}ms`);
  const errs = n.ofType('dial-error');
  assert.equal(errs.length, 1);
  assert.equal(errs[0]!.code, 'SLUICE_ERR_DIAL_TIMEOUT');
  assert.equal(n.ofType('session-ended').length, 0);
  assert.equal(n.node.route('ssh')!.active, 0);
});

test('tcp streams: PROXY v2 is written upstream before the first relayed byte', async (t) => {
  const got: Buffer[] = [];
  const up = await tcpServer(t, (s) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => {
      got.push(Buffer.concat(parts));
      s.end('ok');
    });
  });
  const n = await startNode(t, route(up.port, '    proxyProtocol: { send: v2 }'));
  const c = await tcpConnect(t, n.port('ssh'));
  const clientPort = c.localPort;
  c.end('payload');
  assert.equal((await readAll(c)).toString(), 'ok');
  await waitFor(() => got.length === 1, 'upstream saw the FIN');
  const r = decodeProxyHeader(got[0]!, { final: true });
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') return;
  assert.equal(r.header.addresses?.source.port, clientPort);
  assert.equal(r.header.addresses?.destination.port, n.port('ssh'));
  assert.equal(got[0]!.subarray(r.length).toString(), 'payload');
});

test('tcp streams: a reload that keeps the listen keeps live connections flowing', async (t) => {
  const up = await tcpServer(t);
  const n = await startNode(t, route(up.port));
  const c = await tcpConnect(t, n.port('ssh'));
  c.write('before');
  assert.equal((await once(c, 'data'))[0].toString(), 'before');
  const { config } = await import('../helpers/node.js');
  const summary = await n.node.reload(config(route(up.port, '    tcp: { idleTimeout: 30s }')));
  assert.deepEqual(summary.changed, ['ssh']);
  c.write('after');
  assert.equal((await once(c, 'data'))[0].toString(), 'after');
  assert.equal(n.node.route('ssh')!.active, 1);
  c.end();
  await waitFor(() => n.ofType('session-ended').length === 1, 'end event');
  assert.equal(n.ofType('session-ended')[0]!.reason, 'client-closed');
});

test('tcp streams: a port already in use fails the start with SLUICE_ERR_BIND naming the route and EADDRINUSE', async (t) => {
  const taken = await tcpServer(t);
  await assert.rejects(
    startNode(t, `
routes:
  busy:
    listen: tcp://127.0.0.1:${taken.port}
    upstream: 127.0.0.1:1
`),
    (err: Error & { code?: string }) => err.code === 'SLUICE_ERR_BIND' && /route "busy": cannot listen on tcp:\/\/127\.0\.0\.1:\d+: EADDRINUSE/.test(err.message),
  );
});

test('tcp streams: a live connection is listed with counters, and shutdown ends it as shutdown', async (t) => {
  const up = await tcpServer(t);
  const n = await startNode(t, route(up.port));
  const c = await tcpConnect(t, n.port('ssh'));
  c.write('12345');
  await once(c, 'data');
  const [s] = n.node.route('ssh')!.sessions();
  assert.equal(s?.state, 'open');
  assert.equal(s?.bytesFromClient, 5);
  assert.equal(s?.bytesToClient, 5);
  await n.node.destroy();
  await once(c, 'end');
  await waitFor(() => n.ofType('session-ended').length === 1, 'end event');
  const end = n.ofType('session-ended')[0]!;
  assert.equal(end.reason, 'shutdown');
  assert.equal(end.counters.bytesFromClient, 5);
});

test('tcp streams: on the native datapath a plain route joins the pair in the datapath', async (t) => {
  const dp = datapathOf(t)!;
  let joined = 0;
  const counting: StreamDatapath = {
    kind: dp.kind,
    listen: dp.listen.bind(dp),
    dial: dp.dial.bind(dp),
    pipeSealed: dp.pipeSealed.bind(dp),
    pipe: (...args) => {
      const stop = dp.pipe(...args);
      if (stop) joined++;
      return stop;
    },
  };
  const up = await tcpServer(t);
  const n = await startNode(t, route(up.port), { streamDatapath: counting });
  const c = await tcpConnect(t, n.port('ssh'));
  c.end('x');
  assert.equal((await readAll(c)).toString(), 'x');
  assert.equal(joined, dp.kind === 'native' ? 1 : 0);
});

test('tcp streams: an upstream that is not a socket (a dialer giving a Node stream) is relayed in the same route', async (t) => {
  const up = await tcpServer(t);
  // Stands in for an agent's tunnel stream or a peer relay: a Duplex, not a socket dialer.
  const streamOnly: StreamDialer = {
    dial: async () => {
      const s = net.connect({ host: '127.0.0.1', port: up.port, allowHalfOpen: true });
      await once(s, 'connect');
      return { stream: new PassThroughDuplex(s), remote: { address: '127.0.0.1', port: up.port, family: 4 } };
    },
  };
  const n = await startNode(t, route(up.port), { streamDialer: streamOnly });
  const c = await tcpConnect(t, n.port('ssh'));
  c.end('through a stream');
  assert.equal((await readAll(c)).toString(), 'through a stream');
  await waitFor(() => n.ofType('session-ended').length === 1, 'end event');
  const end = n.ofType('session-ended')[0]!;
  assert.equal(end.reason, 'client-closed');
  assert.equal(end.counters.bytesFromClient, 16);
  assert.equal(end.counters.bytesToClient, 16);
});

plainTest('tcp streams [native]: 10,000 connections churned through a route leave the descriptor count where it was', { timeout: 180_000 }, async (t) => {
  const native = nativeStreamCase();
  if (native.skip) return t.skip(native.skip);
  if (!native.datapath) throw new Error('CI=true: the native stream datapath must load');
  const up = await tcpServer(t);
  const n = await startPlainNode(t, route(up.port), { streamDatapath: native.datapath });
  const port = n.port('ssh');
  const churn = async (count: number, concurrency: number) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        s.on('error', () => {});
        s.end('0123456789abcdef0123456789abcdef');
        const got = await readAll(s, 10_000);
        assert.equal(got.length, 32);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    await waitFor(() => n.node.route('ssh')!.active === 0 && up.sockets.size === 0, 'all closed', 10_000);
  };
  const fds = () => readdirSync('/proc/self/fd').length;
  await churn(500, 32); // the engine's pipe pool and the test's own handles reach their steady size
  const baseline = fds();
  await churn(10_000, 32);
  assert.equal(n.ofType('session-ended').length, 10_500);
  assert.ok(fds() <= baseline, `descriptors: ${baseline} before, ${fds()} after 10,000 connections`);
});

plainTest('tcp streams [native]: an idle relayed connection holds its two sockets and no pipe', async (t) => {
  const native = nativeStreamCase();
  if (native.skip) return t.skip(native.skip);
  if (!native.datapath) throw new Error('CI=true: the native stream datapath must load');
  const up = await tcpServer(t);
  const n = await startPlainNode(t, route(up.port), { streamDatapath: native.datapath });
  const fds = () => readdirSync('/proc/self/fd').length;
  const baseline = fds();
  const count = 200;
  const clients: net.Socket[] = [];
  for (let i = 0; i < count; i++) {
    const c = await tcpConnect(t, n.port('ssh'));
    c.write('x');
    await once(c, 'data');
    clients.push(c);
  }
  assert.equal(n.node.route('ssh')!.active, count);
  // Per connection in this process: the test's client, the relay's two sockets, the echo's socket.
  const added = fds() - baseline;
  assert.ok(added <= count * 4 + 32, `${added} descriptors for ${count} idle connections (4 each expected, pipes only in flight)`);
});

test('tcp streams: a reader stalled for 5 s on a 200 MB stream leaves the relay process RSS bounded, and every byte arrives after', async (t) => {
  const total = 200 * 1024 * 1024;
  const up = await pumpingUpstream(t, total, 256 * 1024);
  const n = await startNode(t, route(up.port));
  const c = await tcpConnect(t, n.port('ssh'));
  c.pause();
  const before = process.memoryUsage.rss();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100);
  t.after(() => clearInterval(sampler));
  await waitFor(() => up.sent() > 0, 'upstream started');
  // The stall under test: nobody reads for 5 s while the upstream has 200 MB to send.
  await new Promise((r) => setTimeout(r, 5000));
  clearInterval(sampler);
  assert.ok(up.sent() < 32 * 1024 * 1024, `the upstream pushed ${up.sent()} bytes into a stalled reader`);
  assert.ok(peak - before < 64 * 1024 * 1024, `RSS grew by ${peak - before} bytes during the stall`);
  let got = 0;
  c.on('data', (d: Buffer) => (got += d.length));
  c.resume();
  await once(c, 'end');
  assert.equal(got, total);
});

/** A listener (python3) whose accept queue is full, so a new SYN is dropped and connect hangs. */
async function fullBacklogListener(t: TestContext): Promise<number> {
  const py = spawn('python3', ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => py.kill());
  const [line] = (await once(py.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  // Fill the queue (backlog 0 holds one): this handshake completes into it, later SYNs are dropped.
  const s = net.connect({ host: '127.0.0.1', port });
  t.after(() => s.destroy());
  await once(s, 'connect');
  return port;
}

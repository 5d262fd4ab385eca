import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { readAll, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { startNode } from '../helpers/node.js';
import { loadNativeBinding, youngGenerationHeap } from '../../src/datapath/native/binding.js';
import { NativeStreamDatapath } from '../../src/datapath/native/native-stream-datapath.js';
import { streamBindingOf, type NativeStreamBinding } from '../../src/datapath/native/stream-binding.js';

// The stream engine's epoll set on top of libuv's (docs/datapath.md, "One epoll set for the
// engine's sockets"): the thread blocks in the engine's set, libuv's set nested in it. Node runs
// each test file in a process of its own, so the first engine made here is the first of its loop.
const loaded = loadNativeBinding();
const binding: NativeStreamBinding | string = loaded.ok ? streamBindingOf(loaded.binding) : loaded.reason;
const skip = typeof binding === 'string' && process.env.CI !== 'true' ? `native stream datapath unavailable: ${binding}` : false;
const need = (): NativeStreamBinding => {
  if (typeof binding === 'string') throw new Error(`CI=true: the native stream datapath must load: ${binding}`);
  return binding;
};
const top = typeof binding === 'string' ? undefined : new NativeStreamDatapath(binding, { waitOnTop: true });
const nested = typeof binding === 'string' ? undefined : new NativeStreamDatapath(binding, { waitOnTop: true });

const route = (upstream: number) => `
routes:
  plain:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream}
`;

test('stream wait on top: the first engine of a loop waits on top, a second one asked for it stays nested', { skip }, () => {
  need();
  assert.equal(top!.waitsOnTop, true);
  assert.equal(nested!.waitsOnTop, false);
  assert.equal(nested!.waitedMs(), 0);
});

for (const which of ['top', 'nested'] as const) {
  test(`stream wait on top: a route on the ${which} engine relays both ways and forwards a half-close`, { skip }, async (t) => {
    need();
    const dp = which === 'top' ? top! : nested!;
    let upstreamEnded = false;
    const up = await tcpServer(t, (s) => {
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      // The client's FIN arrives as a FIN: answer after it, then close.
      s.on('end', () => {
        upstreamEnded = true;
        s.end(Buffer.concat([Buffer.from('got:'), ...got]));
      });
    });
    const n = await startNode(t, route(up.port), { streamDatapath: dp });
    const c = await tcpConnect(t, n.port('plain'));
    c.end('ping');
    assert.equal((await readAll(c)).toString(), 'got:ping');
    assert.equal(upstreamEnded, true);
    await waitFor(() => n.ofType('session-ended').length === 1, 'the end event');
    const end = n.ofType('session-ended')[0]!;
    assert.equal(end.reason, 'client-closed'); // the first FIN was the client's
    assert.equal(end.counters.bytesFromClient, 4);
    assert.equal(end.counters.bytesToClient, 8);
  });
}

test('stream wait on top: timers, setImmediate and Node sockets run while the engine waits, and its wait counts as idle', { skip }, async (t) => {
  need();
  const dp = top!;
  const listener = await dp.listen('127.0.0.1', 0, (c) => c.destroy());
  t.after(() => listener.close());
  const heap = youngGenerationHeap(undefined, () => dp.waitedMs());
  heap?.busy();
  const waited0 = dp.waitedMs();
  // The wait ends at libuv's next timer: a 100 ms timer fires (the test's own timeout otherwise).
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(performance.now() - t0 < 2000);
  await new Promise((resolve) => setImmediate(resolve));
  // A Node socket's events come through libuv's set, nested in the engine's.
  const up = await tcpServer(t);
  const c = await tcpConnect(t, up.port);
  c.write('echo');
  const [back] = (await once(c, 'data')) as [Buffer];
  assert.equal(back.toString(), 'echo');
  assert.ok(dp.waitedMs() - waited0 >= 50, `blocked in the engine's set for ${dp.waitedMs() - waited0} ms of a 100 ms timer`);
  // Without the engine's idle time the event loop would look busy all along.
  if (heap) assert.ok(heap.busy() < 0.5, 'the loop looked busy while it waited in the engine');
});

test('stream wait on top: 10,000 connections churned through a route leave the descriptor count where it was', { skip, timeout: 180_000 }, async (t) => {
  need();
  const up = await tcpServer(t);
  const n = await startNode(t, route(up.port), { streamDatapath: top! });
  const port = n.port('plain');
  const churn = async (count: number, concurrency: number) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        s.on('error', () => {});
        s.end('0123456789abcdef0123456789abcdef');
        assert.equal((await readAll(s, 10_000)).length, 32);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    await waitFor(() => n.node.route('plain')!.active === 0 && up.sockets.size === 0, 'all closed', 10_000);
  };
  const fds = () => readdirSync('/proc/self/fd').length;
  await churn(500, 32); // the engine's pipe pool and the test's own handles reach their steady size
  const baseline = fds();
  await churn(10_000, 32);
  assert.equal(n.ofType('session-ended').length, 10_500);
  assert.ok(fds() <= baseline, `descriptors: ${baseline} before, ${fds()} after 10,000 connections`);
});

test('stream wait on top: refused once the engine has a socket open; the loop is free again when the engine on top is destroyed', { skip }, async () => {
  const b = need();
  const e = b.streamOpen(new Float64Array(16 * 4), () => {});
  b.streamListen(e, '127.0.0.1', 0, 16);
  assert.throws(() => b.streamWaitOnTop!(e), /already has sockets open/);
  b.streamDestroy(e);
  nested!.destroy();
  top!.destroy();
  const next = new NativeStreamDatapath(b, { waitOnTop: true });
  assert.equal(next.waitsOnTop, true);
  // It works: a listener takes a connection and closes it.
  const accepted = new Promise<void>((resolve) => void next.listen('127.0.0.1', 0, (c) => (c.destroy(), resolve())).then((l) => {
    const s = net.connect(l.local.port, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => void l.close());
  }));
  await accepted;
  next.destroy();
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import type { ListenerReceiver, UdpListener } from '../../src/datapath/udp-datapath.js';
import type { DatagramReceiver } from '../../src/upstream/dialer.js';
import { freePort, waitFor } from '../helpers/net.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

function datapath(t: TestContext, gso = true, readiness: 'loop' | 'thread' = 'loop'): NativeDatapath {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout, { gso, readiness });
  t.after(() => dp.destroy());
  return dp;
}

/** A listener that records what it gets (copied, as the seam requires) and every send error. */
async function recordingListener(t: TestContext, dp: NativeDatapath, host: string, extra: Partial<ListenerReceiver> = {}) {
  const got: { buf: Buffer; address: string; port: number }[] = [];
  const errors: Error[] = [];
  const receiver: ListenerReceiver = {
    onDatagram: (buf, address, port) => got.push({ buf: Buffer.from(buf), address, port }),
    onSendError: (err) => errors.push(err),
    ...extra,
  };
  const listener: UdpListener = await dp.listen(host, 0, receiver);
  t.after(() => listener.close());
  return { listener, got, errors };
}

async function socket(t: TestContext, type: 'udp4' | 'udp6', host: string) {
  const s = dgram.createSocket({ type, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  const inbox: Buffer[] = [];
  s.on('message', (m) => inbox.push(m));
  s.bind(0, host);
  await once(s, 'listening');
  t.after(() => s.close());
  return { s, inbox, port: s.address().port };
}

for (const [gso, readiness] of [[true, 'loop'], [false, 'loop'], [true, 'thread']] as const) {
  test(`native datapath: a burst of equal-sized datagrams to one client arrives whole and in order, the short last one too (gso ${gso}, readiness ${readiness})`, { skip }, async (t) => {
    const dp = datapath(t, gso, readiness);
    const { listener, got } = await recordingListener(t, dp, '127.0.0.1');
    const c = await socket(t, 'udp4', '127.0.0.1');
    c.s.send('hi', listener.local.port, '127.0.0.1');
    await waitFor(() => got.length === 1, 'first datagram');
    // Sent outside a batch: staged, then flushed together in one microtask (runs of 100 B -> GSO).
    const sent: Buffer[] = [];
    for (let i = 0; i < 150; i++) sent.push(Buffer.alloc(i === 149 ? 37 : 100, i));
    for (const b of sent) listener.send(b, c.port, '127.0.0.1');
    await waitFor(() => c.inbox.length === sent.length, `${sent.length} datagrams (got ${c.inbox.length})`);
    assert.deepEqual(c.inbox.map((b) => b.length), sent.map((b) => b.length));
    assert.ok(c.inbox.every((b, i) => b.equals(sent[i]!)), 'same bytes, same order');
  });
}

test('native datapath: many datagrams in one batch reach the receiver in order, with their sources as numbers', { skip }, async (t) => {
  const dp = datapath(t);
  const v4: [number, number, string][] = [];
  const { listener } = await recordingListener(t, dp, '127.0.0.1', {
    onDatagramV4: (buf, ip, port) => v4.push([ip, port, buf.toString()]),
  });
  const c = await socket(t, 'udp4', '127.0.0.1');
  for (let i = 0; i < 100; i++) c.s.send(`m${i}`, listener.local.port, '127.0.0.1');
  await waitFor(() => v4.length === 100, "100 datagrams (a default receive buffer holds them)");
  assert.deepEqual(v4.map((x) => x[2]), Array.from({ length: 100 }, (_, i) => `m${i}`));
  assert.ok(v4.every(([ip, port]) => ip === 0x7f000001 && port === c.port));
});

test('native datapath: IPv6, and IPv4 clients of a dual-stack listener reported and answered as IPv4', { skip }, async (t) => {
  const dp = datapath(t);
  const six = await recordingListener(t, dp, '::1');
  assert.deepEqual([six.listener.local.address, six.listener.local.family], ['::1', 6]);
  const c6 = await socket(t, 'udp6', '::1');
  c6.s.send('over six', six.listener.local.port, '::1');
  await waitFor(() => six.got.length === 1, 'v6 datagram');
  assert.deepEqual([six.got[0]!.address, six.got[0]!.port, six.got[0]!.buf.toString()], ['::1', c6.port, 'over six']);
  six.listener.send(Buffer.from('back'), c6.port, six.got[0]!.address);
  await waitFor(() => c6.inbox.length === 1, 'v6 reply');

  const dual = await recordingListener(t, dp, '::');
  const c4 = await socket(t, 'udp4', '127.0.0.1');
  c4.s.send('over four', dual.listener.local.port, '127.0.0.1');
  await waitFor(() => dual.got.length === 1, 'v4 datagram on the dual-stack listener');
  assert.equal(dual.got[0]!.address, '127.0.0.1');
  dual.listener.send(Buffer.from('plain'), c4.port, '127.0.0.1');
  dual.listener.send(Buffer.from('mapped'), c4.port, '::ffff:127.0.0.1');
  await waitFor(() => c4.inbox.length === 2, 'both replies');
  assert.deepEqual(c4.inbox.map(String), ['plain', 'mapped']);
});

test('native datapath: the largest datagrams pass both ways; one too large fails alone with EMSGSIZE', { skip }, async (t) => {
  const dp = datapath(t);
  const { listener, got, errors } = await recordingListener(t, dp, '127.0.0.1');
  const c = await socket(t, 'udp4', '127.0.0.1');
  const big = Buffer.alloc(65507);
  for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
  c.s.send(big, listener.local.port, '127.0.0.1');
  await waitFor(() => got.length === 1, 'largest IPv4 datagram in');
  assert.ok(got[0]!.buf.equals(big));
  listener.send(Buffer.alloc(65508), c.port, '127.0.0.1');
  listener.send(big, c.port, '127.0.0.1');
  await waitFor(() => c.inbox.length === 1 && errors.length === 1, 'largest out, oversized refused');
  assert.ok(c.inbox[0]!.equals(big));
  assert.equal((errors[0] as Error & { code: string }).code, 'EMSGSIZE');
  listener.send(Buffer.from('still open'), c.port, '127.0.0.1');
  await waitFor(() => c.inbox.length === 2, 'the socket survives');
});

function recordingReceiver() {
  const r = { got: [] as string[], fatal: [] as string[], dropped: [] as string[] };
  const receiver: DatagramReceiver = {
    onUpstreamDatagram: (buf) => r.got.push(buf.toString()),
    onUpstreamError: (err) => r.fatal.push((err as Error & { code: string }).code),
    onDatagramError: (err) => r.dropped.push((err as Error & { code: string }).code),
  };
  return { ...r, receiver };
}

test('native datapath: a connected channel sends prefix + payload as one datagram; per-datagram errors do not close it; ICMP unreachable does', { skip }, async (t) => {
  const dp = datapath(t);
  const up = await socket(t, 'udp4', '127.0.0.1');
  up.s.on('message', (m, r) => up.s.send(Buffer.concat([Buffer.from('re:'), m]), r.port, r.address));
  const a = recordingReceiver();
  const ch = await dp.connect({ address: '127.0.0.1', port: up.port, family: 4 }, a.receiver);
  t.after(() => ch.close());
  const prefix = Buffer.from('HDR|');
  ch.send(Buffer.from('one'), prefix);
  ch.send(Buffer.from('two'), null);
  ch.send(Buffer.alloc(65507), prefix); // prefix + payload exceed the largest IPv4 datagram
  ch.send(Buffer.from('three'), prefix);
  await waitFor(() => a.got.length === 3, 'three replies');
  assert.deepEqual(a.got, ['re:HDR|one', 're:two', 're:HDR|three']);
  assert.deepEqual(a.dropped, ['EMSGSIZE']);
  assert.deepEqual(a.fatal, []);

  const dead = await freePort('udp');
  const b = recordingReceiver();
  const gone = await dp.connect({ address: '127.0.0.1', port: dead, family: 4 }, b.receiver);
  t.after(() => gone.close());
  gone.send(Buffer.from('anyone?'), null);
  await waitFor(() => b.fatal.length > 0, 'ECONNREFUSED');
  assert.equal(b.fatal[0], 'ECONNREFUSED');
});

test('native datapath: a closed socket gets nothing more, and a new socket reusing its id gets only its own datagrams', { skip }, async (t) => {
  const dp = datapath(t);
  const up = await socket(t, 'udp4', '127.0.0.1');
  const sources: number[] = [];
  up.s.on('message', (m, r) => {
    sources.push(r.port);
    up.s.send(m, r.port, r.address);
  });
  const first = recordingReceiver();
  const ch1 = await dp.connect({ address: '127.0.0.1', port: up.port, family: 4 }, first.receiver);
  ch1.send(Buffer.from('a'), null);
  await waitFor(() => first.got.length === 1, 'first reply');
  const oldPort = sources[0]!;
  ch1.close();
  ch1.close(); // idempotent
  ch1.send(Buffer.from('after close'), null);
  up.s.send('late', oldPort, '127.0.0.1'); // to the closed socket's port
  const second = recordingReceiver();
  const ch2 = await dp.connect({ address: '127.0.0.1', port: up.port, family: 4 }, second.receiver);
  t.after(() => ch2.close());
  ch2.send(Buffer.from('b'), null);
  await waitFor(() => second.got.length === 1, 'second reply');
  assert.deepEqual(first.got, ['a']);
  assert.deepEqual(second.got, ['b']);
  assert.equal(sources.length, 2, '"after close" was never sent');
});

test('native datapath: bind errors are system errors with their code', { skip }, async (t) => {
  const dp = datapath(t);
  const { listener } = await recordingListener(t, dp, '127.0.0.1');
  await assert.rejects(dp.listen('127.0.0.1', listener.local.port, { onDatagram() {}, onSendError() {} }), (err: Error & { code?: string }) => err.code === 'EADDRINUSE');
  await assert.rejects(dp.listen('not-an-ip', 0, { onDatagram() {}, onSendError() {} }), (err: Error & { code?: string }) => err.code === 'EINVAL');
});

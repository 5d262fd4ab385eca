import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { ManualClock } from '../helpers/manual-clock.js';
import { sleep, udpEcho, waitFor } from '../helpers/net.js';
import { startApp, tempDir } from '../admin/app-helper.js';
import { parseConfig } from '../../src/config/load.js';
import { BYTE_SAMPLE_MS, BYTE_SLOTS, ByteMeter, ByteWindow } from '../../src/admission/bans/byte-meter.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { perConfigDatapath } from '../datapath/stream-datapaths.js';
import { clientSockets, echoUpstream, ended } from './helpers.js';

// `bytesPer` ban rules (docs/bans.md): bytes per source over a window, from ended sessions'
// counters and live sessions' counters read every BYTE_SAMPLE_MS on the injected clock.

const KB = 1000;
const client = { address: '127.0.0.1', port: 1, family: 4 as const };

test('ByteMeter: live samples report deltas, an end reports only what the samples had not, a flow is never counted twice', () => {
  const got: number[] = [];
  const m = new ByteMeter((_route, _client, n) => got.push(n));
  const flow = (id: number, from: number, to: number) => ({ id, route: 'r', client, bytesFromClient: from, bytesToClient: to });
  m.sample([flow(1, 100, 50)]);
  m.sample([flow(1, 300, 50)]);
  m.sample([flow(1, 300, 50)]);
  assert.deepEqual(got, [150, 200], 'an unchanged flow reports nothing');
  m.ended(flow(1, 0, 0), { bytesFromClient: 400, bytesToClient: 60, packetsFromClient: 0, packetsToClient: 0 });
  assert.deepEqual(got, [150, 200, 110], 'the end adds what moved since the last sample');
  // Still listed by a sample after its end (a route that lists closing sessions): counted no more.
  m.sample([flow(1, 500, 500)]);
  assert.deepEqual(got, [150, 200, 110]);
  // A flow that started and ended between samples is counted whole, once.
  m.ended(flow(2, 0, 0), { bytesFromClient: 7, bytesToClient: 3, packetsFromClient: 0, packetsToClient: 0 });
  m.sample([]);
  assert.deepEqual(got, [150, 200, 110, 10]);
});

test('ByteWindow: sums the last window (16 slots) and forgets what slid out', () => {
  const w = new ByteWindow(16_000);
  assert.equal(w.add(0, 100), 100);
  assert.equal(w.add(8_000, 50), 150);
  assert.equal(w.add(15_999, 1), 151, 'still inside the window');
  assert.equal(w.add(16_000, 1), 52, 'the first slot slid out');
  assert.equal(w.add(40_000, 5), 5, 'everything older than the window is gone');
  assert.equal(BYTE_SLOTS, 16);
});

test('config: bytesPer takes a size and a window; a bad size names the key', () => {
  const ok = parseConfig('bans:\n  rules:\n    hogs: { when: { bytesPer: { bytes: 100MB, window: 1m } }, ban: 1h }\n');
  assert.ok(ok.ok);
  assert.deepEqual(ok.config.bans!.rules[0]!.bytesPer, { bytes: 100_000_000, windowMs: 60_000 });
  const bad = parseConfig('bans:\n  rules:\n    hogs: { when: { bytesPer: { bytes: 100Mb, window: 1m } }, ban: 1h }\n');
  assert.ok(!bad.ok);
  assert.match(JSON.stringify(bad.issues), /bans\.rules\.hogs\.when\.bytesPer\.bytes/);
});

/** An App whose rule `hogs` bans sources moving more than 100 kB within 1 minute on a TCP and a UDP route. */
async function bytesApp(t: TestContext, mode = 'enforce', datapathLine = '') {
  const sockets = clientSockets(t);
  const up = await echoUpstream(t);
  const echo = await udpEcho(t);
  const dir = await tempDir(t, 'sluice-bans-');
  const clock = new ManualClock();
  const a = await startApp(
    t,
    `
bans:
  stateDir: ${dir}
  rules:
    hogs: { when: { bytesPer: { bytes: 100KB, window: 1m } }, ban: 1h, mode: ${mode} }
  default: [hogs]
routes:
  stream:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    udp: { idleTimeout: 10m }
${datapathLine}`,
    { clock },
  );
  const seen: SluiceEvent[] = [];
  a.app.events.subscribe((e) => seen.push(e));
  /** A TCP connection from `from` that has echoed `bytes` bytes (so 2 x bytes moved). */
  const stream = async (from: string, bytes: number) => {
    const s = net.connect({ host: '127.0.0.1', port: a.port('stream'), localAddress: from, allowHalfOpen: true });
    s.on('error', () => {});
    sockets.push(s);
    await once(s, 'connect');
    let back = 0;
    s.on('data', (d: Buffer) => (back += d.length));
    s.write(Buffer.alloc(bytes, 1));
    await waitFor(() => back >= bytes, `${bytes} bytes echoed to ${from}`);
    return s;
  };
  /** A UDP client on `from` whose `n` datagrams of 1000 bytes have come back. */
  const datagrams = async (from: string, n: number) => {
    const sock = dgram.createSocket('udp4');
    t.after(() => sock.close());
    sock.bind(0, from);
    await once(sock, 'listening');
    let back = 0;
    sock.on('message', () => back++);
    for (let i = 0; i < n; i++) {
      sock.send(Buffer.alloc(1000, 2), a.port('game'), '127.0.0.1');
      if (i % 10 === 9) await waitFor(() => back > i - 10, 'echoes keep up');
    }
    await waitFor(() => back >= n - 2, `${n} datagrams echoed to ${from}`);
    return sock;
  };
  const endedOf = (from: string) => seen.flatMap((e) => (e.type === 'session-ended' && e.flow.client.address === from ? [e.reason] : []));
  /** Stops the app, moving the manual clock so live UDP sessions and TCP connections drain out. */
  const stop = async () => {
    let done = false;
    const stopping = a.stop().then(() => (done = true));
    for (let i = 0; i < 100 && !done; i++) {
      clock.advance(1000);
      await sleep(5);
    }
    await stopping;
  };
  return { ...a, clock, seen, stream, datagrams, endedOf, stop };
}

// Once per datapath: on native the live counters of a joined TCP pair come from the addon.
const perDatapathTest = perConfigDatapath();

perDatapathTest('bans: bytesPer bans a TCP source and a UDP source that moved more than 100 kB within a minute; their live sessions end banned, a source under the limit goes on', async (t, datapathLine) => {
  const b = await bytesApp(t, 'enforce', datapathLine);
  const hog = await b.stream('127.0.0.1', 60 * KB); // 60 kB each way: 120 kB
  const small = await b.stream('127.0.0.2', 10 * KB);
  await b.datagrams('127.0.0.3', 60); // 60 x 1000 bytes each way: 120 kB
  const quiet = await b.datagrams('127.0.0.2', 5);
  assert.equal(b.seen.filter((e) => e.type === 'ban-added').length, 0, 'nothing is banned before the counters are read');

  b.clock.advance(BYTE_SAMPLE_MS);
  await waitFor(() => b.app.bans!.store.size === 2, 'two sources banned by the sample');
  const targets = b.app.bans!.store.list().map((x) => [x.target, x.source, x.reason]).sort();
  assert.deepEqual(targets, [
    ['127.0.0.1', 'rule:hogs', 'more than 100000 bytes within 1m'],
    ['127.0.0.3', 'rule:hogs', 'more than 100000 bytes within 1m'],
  ]);
  await ended(hog);
  await waitFor(() => b.endedOf('127.0.0.1').length === 1 && b.endedOf('127.0.0.3').length === 1, 'the hogs\' sessions end');
  assert.deepEqual([b.endedOf('127.0.0.1'), b.endedOf('127.0.0.3')], [['banned'], ['banned']]);

  // 127.0.0.2 (10 kB x 2 over TCP, 5 kB x 2 over UDP: 30 kB) stays under the limit and is still relayed.
  assert.deepEqual(b.endedOf('127.0.0.2'), []);
  let back = 0;
  small.on('data', (d: Buffer) => (back += d.length));
  small.write('more');
  await waitFor(() => back === 4, 'the small source is still relayed');
  const echoed = new Promise<void>((resolve) => quiet.on('message', (m: Buffer) => m.toString() === 'again' && resolve()));
  quiet.send('again', b.port('game'), '127.0.0.1');
  await echoed;
  await b.stop();
});

perDatapathTest('bans: bytesPer counts a connection that ended between samples from its final counters', async (t, datapathLine) => {
  const b = await bytesApp(t, 'enforce', datapathLine);
  const s = await b.stream('127.0.0.1', 60 * KB);
  s.end();
  await waitFor(() => b.endedOf('127.0.0.1').length === 1, 'the connection ends');
  await waitFor(() => b.app.bans!.store.get('127.0.0.1') !== undefined, 'banned from the end counters, with no sample');
  const next = net.connect({ host: '127.0.0.1', port: b.port('stream'), allowHalfOpen: true });
  next.on('error', () => {});
  await ended(next);
  next.destroy();
  await waitFor(() => b.seen.some((e) => e.type === 'session-rejected' && e.reason === 'banned'), 'the next connection is refused');
});

test('bans: bytesPer in observe mode records the would-be ban; nothing is banned and the session goes on', async (t) => {
  const b = await bytesApp(t, 'observe');
  const hog = await b.stream('127.0.0.1', 60 * KB);
  b.clock.advance(BYTE_SAMPLE_MS);
  await waitFor(() => b.seen.some((e) => e.type === 'ban-added'), 'a would-be ban');
  const added = b.seen.filter((e): e is Extract<SluiceEvent, { type: 'ban-added' }> => e.type === 'ban-added');
  assert.deepEqual(added.map((e) => [e.observeOnly, e.ban.target, e.ban.source]), [[true, '127.0.0.1', 'rule:hogs']]);
  assert.equal(b.app.bans!.store.size, 0);
  let back = 0;
  hog.on('data', (d: Buffer) => (back += d.length));
  hog.write('still');
  await waitFor(() => back === 5, 'still relayed');
  assert.deepEqual(b.endedOf('127.0.0.1'), []);
});

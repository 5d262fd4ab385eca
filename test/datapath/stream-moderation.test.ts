import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeStreamCase } from './stream-datapaths.js';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeStreamDatapath } from '../../src/datapath/native/native-stream-datapath.js';
import { streamBindingOf } from '../../src/datapath/native/stream-binding.js';
import { sleep, waitFor } from '../helpers/net.js';

// Wake-up moderation (docs/datapath.md, "Wake-up moderation"): the engine waits after a wake-up
// only while its read rate is a bulk one, and every byte still arrives. Judged by the engine's
// counters, not by timing.
const skip = nativeStreamCase().skip ?? false;
const MiB = 1024 * 1024;

/** A native engine of its own relaying one client to one upstream socket. */
async function pair(t: TestContext) {
  const loaded = loadNativeBinding();
  if (!loaded.ok) throw new Error(`the native addon must load: ${loaded.reason}`);
  const b = streamBindingOf(loaded.binding);
  if (typeof b === 'string') throw new Error(b);
  const dp = new NativeStreamDatapath(b);
  t.after(() => dp.destroy());
  const upstream = net.createServer({ allowHalfOpen: true });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const accepted = once(upstream, 'connection') as Promise<[net.Socket]>;
  const listener = await dp.listen('127.0.0.1', 0, (down) => {
    dp.dial({ address: '127.0.0.1', port: (upstream.address() as net.AddressInfo).port, family: 4 }, 2000, (err, up) => {
      if (err || !dp.pipe(down, up!, 0, () => {})) down.destroy();
    });
  });
  const c = net.connect({ port: listener.local.port, host: '127.0.0.1', allowHalfOpen: true });
  const [u] = await accepted;
  t.after(() => {
    c.destroy();
    u.destroy();
    listener.close();
    upstream.close();
  });
  return { dp, c, u, atUp: counter(u), atClient: counter(c) };
}

/** Counts what `s` receives; `until(n)` resolves once n bytes in all have come. */
function counter(s: net.Socket) {
  let got = 0;
  s.on('data', (d: Buffer) => void (got += d.length));
  return { until: (n: number, what: string) => waitFor(() => got >= n, `${what}: ${n} bytes (got ${got})`, 20_000) };
}

/** `n` one-byte exchanges, each answered before the next is sent, after the bytes each side already had. */
async function keystrokes(p: Awaited<ReturnType<typeof pair>>, n: number, upBefore: number, clientBefore: number): Promise<void> {
  for (let k = 0; k < n; k++) {
    p.c.write(Buffer.from([k & 255]));
    await p.atUp.until(upBefore + k + 1, `keystroke ${k}`);
    p.u.write(Buffer.from([(k + 1) & 255]));
    await p.atClient.until(clientBefore + k + 1, `answer ${k}`);
  }
}

test('stream moderation: a keystroke exchange with no bulk is never held, even under a 2 ms bound and a low floor', { skip }, async (t) => {
  const p = await pair(t);
  // A floor of 1 MB/s: 300 one-byte round trips bring far less. Without the floor every exchange
  // after the first would be held (each wake-up starts within 2 ms of the previous one's end).
  p.dp.setModeration(2000, 1_000_000, 512 * 1024);
  await keystrokes(p, 300, 0, 0);
  const s = p.dp.moderationState;
  assert.equal(s.readBytes, 600);
  assert.equal(s.waits, 0);
  assert.equal(s.engaged, false);
  assert.equal(s.engages, 0);
});

/**
 * Bulk through the engine from peers in a child process (in this process they would share the
 * engine's thread and space its wake-ups out): the child's upstream server takes `bulk` bytes and
 * a 777-byte tail from the client, then sends `bulk` bytes and a 1-byte tail back, with no FIN
 * after either, and checks every byte in order at both ends. Resolves with what it printed.
 */
function bulkChild(dp: NativeStreamDatapath, bulk: number): Promise<{ up: boolean; down: boolean }> {
  const script = `
    const net = require('node:net');
    const { pattern } = require(process.argv[1]);
    const bulk = Number(process.argv[2]);
    const data = Buffer.concat([pattern(0, bulk), pattern(bulk, 777)]);
    const back = Buffer.concat([pattern(0, bulk), pattern(bulk, 1)]);
    function take(s, want, done) {
      const chunks = []; let got = 0;
      s.on('data', (d) => { chunks.push(d); got += d.length; if (got === want) done(Buffer.concat(chunks)); });
    }
    const server = net.createServer((u) => take(u, data.length, (b) => {
      const up = b.equals(data);
      u.write(back);
      take(c, back.length, (b2) => { console.log(JSON.stringify({ up, down: b2.equals(back) })); process.exit(0); });
    }));
    let c;
    server.listen(0, '127.0.0.1', () => {
      process.stdout.write(server.address().port + '\\n');
      process.stdin.once('data', (d) => { c = net.connect(Number(String(d)), '127.0.0.1', () => c.write(data)); });
    });`;
  const helper = fileURLToPath(new URL('../helpers/stream-pattern.js', import.meta.url));
  const p = spawn(process.execPath, ['--input-type=commonjs', '-e', script, helper, String(bulk)], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let listening = false;
    p.stdout.on('data', async (d: Buffer) => {
      out += d.toString();
      if (!listening && out.includes('\n')) {
        listening = true;
        const upPort = Number(out.split('\n')[0]);
        const l = await dp.listen('127.0.0.1', 0, (down) => {
          dp.dial({ address: '127.0.0.1', port: upPort, family: 4 }, 2000, (err, up) => {
            if (err || !dp.pipe(down, up!, 0, () => {})) down.destroy();
          });
        });
        p.once('exit', () => l.close());
        p.stdin.write(`${l.local.port}\n`);
      }
    });
    p.once('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`bulk child exited ${code}: ${out}`));
      resolve(JSON.parse(last) as { up: boolean; down: boolean });
    });
  });
}

test('stream moderation: a bulk phase engages it, a quiet phase disengages it; every byte arrives both ways, tails with nothing after them', { skip }, async (t) => {
  const p = await pair(t);
  // A floor any loopback bulk transfer passes, and a batch larger than any one wake-up reads, so
  // the bulk phases are held.
  p.dp.setModeration(2000, 5_000_000, 64 * MiB);
  const bulk = 32 * MiB;
  const seen = await bulkChild(p.dp, bulk);
  assert.deepEqual(seen, { up: true, down: true }, 'every byte in order both ways, tails included');
  const bulkState = p.dp.moderationState;
  assert.ok(bulkState.engages >= 1, `engaged in bulk (${JSON.stringify(bulkState)})`);
  assert.ok(bulkState.waits >= 1, `waited in bulk (${JSON.stringify(bulkState)})`);

  // Quiet: the first wake-up after a pause longer than the window closes it with a low rate.
  await sleep(50);
  await keystrokes(p, 20, 0, 0);
  const quiet = p.dp.moderationState;
  assert.equal(quiet.engaged, false);
  assert.equal(quiet.disengages, bulkState.disengages + (bulkState.engaged ? 1 : 0));
  assert.equal(quiet.waits, bulkState.waits, 'no keystroke after the bulk was held');
  assert.equal(quiet.readBytes, 2 * bulk + 778 + 40);
});

test('stream moderation: arguments out of range are refused', { skip }, (t) => {
  const loaded = loadNativeBinding();
  if (!loaded.ok) throw new Error(loaded.reason);
  const b = streamBindingOf(loaded.binding);
  if (typeof b === 'string') throw new Error(b);
  const dp = new NativeStreamDatapath(b);
  t.after(() => dp.destroy());
  assert.throws(() => dp.setModeration(2001, 1, 1), RangeError);
  assert.throws(() => dp.setModeration(-1, 1, 1), RangeError);
  assert.throws(() => dp.setModeration(100, 0, 1), RangeError);
  assert.throws(() => dp.setModeration(100, 1, 0), RangeError);
  assert.deepEqual(dp.moderationState, { waits: 0, engaged: false, engages: 0, disengages: 0, rate: 0, readBytes: 0 });
});

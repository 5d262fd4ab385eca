import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { nativeOnly } from './stream-datapaths.js';
import type { StreamConn, StreamDatapath } from '../../src/datapath/stream-datapath.js';
import { freePort } from '../helpers/net.js';

// Lost wake-ups in the native stream engine (docs/datapath.md, "The TCP stream datapath"): every
// connection the kernel accepted on an engine listener must reach TypeScript and be answered,
// whatever the batching, a blocked event loop, an accept that fails, or a handler that throws.
const child = fileURLToPath(new URL('./stream-wakeup-child.js', import.meta.url));

function runChild(args: string[], opts: { ulimit?: number; onPort?: (port: number) => Promise<void> } = {}): Promise<Record<string, number>> {
  const cmd = opts.ulimit ? ['bash', ['-c', `ulimit -n ${opts.ulimit} && exec "$0" "$@"`, process.execPath, child, ...args]] as const : [process.execPath, [child, ...args]] as const;
  const p = spawn(cmd[0], [...cmd[1]], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => p.kill(), 30_000);
    p.stdout.on('data', (d: string) => {
      out += d;
      const lines = out.split('\n');
      if (opts.onPort && lines.length > 1 && lines[0]!.includes('"port"')) {
        const { port } = JSON.parse(lines[0]!) as { port: number };
        const onPort = opts.onPort;
        opts.onPort = undefined;
        void onPort(port).then(() => p.stdin.write('done\n'), reject);
      }
    });
    p.on('exit', (code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`child exited ${code}: ${out}`));
      resolve(JSON.parse(last) as Record<string, number>);
    });
  });
}

const { skip, datapath: nativeDp } = nativeOnly();

test('native stream engine: a connection handler that throws does not cost the other connections of its batch', { skip }, async () => {
  nativeDp();
  const r = await runChild(['throwing-handler']);
  assert.equal(r.calls, 2, 'both accepted connections reached the listener in their batch');
  assert.equal(r.handled, 1, 'the one after the throwing call was handled');
  assert.equal(r.uncaught, 1, 'the error is still an uncaught exception');
});

test('native stream engine: accept4 failing with EMFILE pauses the listener until the next tick; every connection is still accepted', { skip }, async () => {
  nativeDp();
  const n = 150;
  let closed = 0;
  const r = await runChild(['low-fd-limit'], {
    ulimit: 48,
    onPort: async (port) => {
      const socks = Array.from({ length: n }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
      await Promise.all(socks.map((s) => new Promise<void>((resolve) => s.once('close', () => resolve(void closed++)).resume())));
    },
  });
  assert.equal(closed, n);
  assert.equal(r.accepted, n, 'every connection was accepted despite EMFILE');
});

/** Blocks the event loop for up to `ms` now and again until stopped: connections pile up in the kernel meanwhile. */
function stutter(maxMs: number): () => void {
  let on = true;
  let timer: NodeJS.Timeout | undefined;
  const step = () => {
    if (!on) return;
    const until = Date.now() + Math.random() * maxMs;
    while (Date.now() < until);
    timer = setTimeout(step, Math.random() * 3);
  };
  step();
  return () => {
    on = false;
    clearTimeout(timer);
  };
}

test('native stream engine: bursts on many listeners while the loop stutters, more than one accept batch at a time, refused dials: every connection answered', { skip }, async (t) => {
  const dp = nativeDp();
  const echo = net.createServer({ allowHalfOpen: true }, (s) => s.on('error', () => {}).pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  t.after(() => echo.close());
  const echoPort = (echo.address() as net.AddressInfo).port;
  const dead = await freePort();
  const listeners = [];
  for (let i = 0; i < 8; i++) {
    const refused = i % 4 === 3;
    const l = await dp.listen('127.0.0.1', 0, (conn: StreamConn) => {
      dp.dial({ address: '127.0.0.1', port: refused ? dead : echoPort, family: 4 }, 5000, (err, up) => {
        if (err) return conn.destroy();
        if (!dp.pipe(conn, up!, 0, () => {})) {
          conn.destroy();
          up!.destroy();
        }
      });
    });
    t.after(() => l.close());
    listeners.push({ port: l.local.port, refused });
  }
  const stop = stutter(8);
  t.after(stop);
  // Clients in a child process, so they run while this loop is blocked.
  const script = `
    const net = require('node:net');
    const ports = JSON.parse(process.argv[1]);
    const one = (p) => new Promise((resolve) => {
      const s = net.connect(p.port, '127.0.0.1');
      let got = 0;
      const t = setTimeout(() => { s.destroy(); resolve('stuck'); }, 10000);
      s.on('error', () => {});
      s.on('connect', () => s.write(Buffer.alloc(32, 7)));
      s.on('data', (d) => { got += d.length; if (got >= 32) s.end(); });
      s.on('close', () => { clearTimeout(t); resolve(p.refused ? (got === 0 ? 'refused' : 'bad') : got === 32 ? 'ok' : 'bad'); });
    });
    (async () => {
      const n = { ok: 0, refused: 0, bad: 0, stuck: 0 };
      for (let r = 0; r < 4; r++) {
        const all = [];
        for (const p of ports) for (let b = 0; b < (r === 3 ? 160 : 24); b++) if (!(r === 3 && p.refused)) all.push(one(p));
        for (const x of await Promise.all(all)) n[x]++;
      }
      console.log(JSON.stringify(n));
    })();`;
  const p = spawn(process.execPath, ['-e', script, JSON.stringify(listeners)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d));
  await once(p, 'exit');
  stop();
  const n = JSON.parse(out) as Record<string, number>;
  // 3 rounds of 24 on each of 8 listeners (2 refused), then 160 on each of the 6 echo listeners at once.
  assert.deepEqual(n, { ok: 3 * 24 * 6 + 160 * 6, refused: 3 * 24 * 2, bad: 0, stuck: 0 });
});

/** A pair through the engine: client -> listener -> dial `upstreamPort` -> pipe. */
async function relayTo(t: { after: (fn: () => unknown) => void }, dp: StreamDatapath, upstreamPort: number): Promise<number> {
  const l = await dp.listen('127.0.0.1', 0, (conn) => {
    dp.dial({ address: '127.0.0.1', port: upstreamPort, family: 4 }, 5000, (err, up) => {
      if (err) return conn.destroy();
      if (!dp.pipe(conn, up!, 0, () => {})) conn.destroy();
    });
  });
  t.after(() => l.close());
  return l.local.port;
}

function collect(s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => s.once('end', () => resolve(Buffer.concat(chunks))));
}

test('native stream engine: short reads end a read without waiting for EAGAIN, and still forward every byte and FIN (data with its FIN, a burst of tiny writes, a banner and FIN from the upstream)', { skip }, async (t) => {
  const dp = nativeDp();
  // Upstream 1 echoes and ends after the client's FIN (allowHalfOpen); upstream 2 greets and ends at once.
  const echo = net.createServer({ allowHalfOpen: true }, (s) => s.on('error', () => {}).pipe(s));
  const banner = net.createServer((s) => s.on('error', () => {}).end(Buffer.from('220 hello, and goodbye\r\n')));
  for (const srv of [echo, banner]) {
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    t.after(() => srv.close());
  }
  const echoPort = await relayTo(t, dp, (echo.address() as net.AddressInfo).port);
  const bannerPort = await relayTo(t, dp, (banner.address() as net.AddressInfo).port);
  for (let round = 0; round < 20; round++) {
    // Ten bytes and the FIN in one go, before the pair is even joined.
    const a = net.connect({ port: echoPort, host: '127.0.0.1', allowHalfOpen: true });
    a.end(Buffer.from('0123456789'));
    // 200 writes of 5 bytes as fast as they go, then the FIN.
    const b = net.connect({ port: echoPort, host: '127.0.0.1', allowHalfOpen: true });
    b.setNoDelay(true);
    const sent = Buffer.alloc(1000);
    for (let i = 0; i < 200; i++) {
      const piece = Buffer.from(String(i % 100).padStart(5, '-'));
      piece.copy(sent, i * 5);
      b.write(piece);
    }
    b.end();
    const c = net.connect({ port: bannerPort, host: '127.0.0.1' });
    const [ra, rb, rc] = await Promise.all([collect(a), collect(b), collect(c)]);
    assert.equal(ra.toString(), '0123456789', `round ${round}: data sent with its FIN came back, then the FIN`);
    assert.deepEqual(rb, sent, `round ${round}: every tiny write came back in order`);
    assert.equal(rc.toString(), '220 hello, and goodbye\r\n', `round ${round}: the banner and its FIN`);
    for (const s of [a, b, c]) s.destroy();
  }
});

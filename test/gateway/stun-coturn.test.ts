import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { systemClock } from '../../src/core/clock.js';
import { DatagramDemux, attachDatagramHandler, dgramSender } from '../../src/gateway/demux.js';
import { StunBindingServer, stunRoute } from '../../src/gateway/stun-server.js';
import { StunTransactionTable } from '../../src/ice/stun-transaction.js';
import {
  StunMethod, XorMappedAddress, decodeStunDatagram, encodeStunMessage, getAttribute, randomTransactionId, stunMessage,
} from '../../src/protocol/stun/index.js';

/**
 * Interop with Debian's coturn 4.6 (apt-get install coturn): its STUN client against Sluice's
 * server, and Sluice's client against its turnserver. Everything on 127.0.0.1, ports found at
 * run time. Without coturn: fail in CI, skip loudly elsewhere.
 */

function haveCoturn(t: TestContext): boolean {
  const found = ['turnserver', 'turnutils_stunclient'].every((bin) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0);
  if (found) return true;
  const msg = 'coturn is not installed (apt-get install -y coturn): STUN interop tests NOT RUN';
  if (process.env.CI === 'true') assert.fail(msg);
  console.warn(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return false;
}

async function udp(t: TestContext): Promise<{ socket: dgram.Socket; port: number }> {
  const ac = new AbortController();
  const socket = dgram.createSocket({ type: 'udp4', signal: ac.signal });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.after(async () => {
    ac.abort();
    await once(socket, 'close').catch(() => {});
  });
  return { socket, port: socket.address().port };
}

/** A port free on 127.0.0.1 for both UDP and TCP right now (turnserver listens on both). */
async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    const port = s.address().port;
    const tcp = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    s.close();
    if (ok) {
      await new Promise((r) => tcp.close(r));
      return port;
    }
  }
  throw new Error('no free port found');
}

test('turnutils_stunclient gets its own address from Sluice\'s STUN server', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t)) return;
  const gw = await udp(t);
  const server = new StunBindingServer(dgramSender(gw.socket));
  const sources: number[] = [];
  const route = stunRoute(server);
  const demux = new DatagramDemux({ stun: (buf, from) => (sources.push(from.port), route(buf, from)) });
  t.after(attachDatagramHandler(gw.socket, demux.handle));

  const { stdout } = await promisify(execFile)('turnutils_stunclient', ['-p', String(gw.port), '127.0.0.1'], { timeout: 20_000 });
  const m = /UDP reflexive addr: ([\d.]+):(\d+)/.exec(stdout);
  assert.ok(m, `no reflexive address in output:\n${stdout}`);
  assert.equal(m[1], '127.0.0.1');
  assert.ok(sources.length > 0);
  assert.ok(sources.includes(Number(m[2])), `mapped port ${m[2]} is not a source port we saw (${sources.join(', ')})`);
  assert.ok(server.counters.answered > 0);
  assert.equal(server.counters.errorResponses, 0);
});

test('Sluice\'s client gets its own address from coturn turnserver', { timeout: 60_000 }, async (t) => {
  if (!haveCoturn(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-turn-'));
  const port = await freePort();
  const child = spawn(
    'turnserver',
    [
      '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`, '--stun-only',
      '--fingerprint', '--no-tls', '--no-dtls', '--no-cli', '--no-rfc5780', '--log-file=stdout', '--simple-log',
      `--pidfile=${join(dir, 'turnserver.pid')}`, `--userdb=${join(dir, 'turndb')}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const late = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(late);
    }
    rmSync(dir, { recursive: true, force: true }); // after the exit: turnserver removes its pid file then
  });

  const cl = await udp(t);
  const table = new StunTransactionTable({ clock: systemClock, send: dgramSender(cl.socket) }, { rtoMs: 250 });
  t.after(() => table.close());
  t.after(
    attachDatagramHandler(cl.socket, (buf, from) => {
      try {
        const msg = decodeStunDatagram(buf);
        if (msg) table.handleResponse(msg, from);
      } catch {
        // not ours to judge here; a broken datagram simply does not complete the transaction
      }
    }),
  );
  // Retransmissions cover turnserver's start-up: the first requests may arrive before it binds.
  const req = encodeStunMessage(stunMessage('request', StunMethod.Binding, randomTransactionId()), { fingerprint: true });
  const res = await table.request(req, { address: '127.0.0.1', port }).catch((e: unknown) => {
    throw new Error(`no answer from turnserver; its log:\n${log}`, { cause: e });
  });
  assert.equal(res.response.cls, 'success');
  assert.equal(res.response.fingerprint, 'valid');
  assert.deepEqual(getAttribute(res.response, XorMappedAddress), { address: '127.0.0.1', port: cl.port, family: 4 });
  assert.deepEqual(res.from, { address: '127.0.0.1', port });
});

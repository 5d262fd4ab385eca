import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { StunMethod, decodeStunDatagram, encodeStunMessage, randomTransactionId, stunMessage } from '../../src/protocol/stun/index.js';

/**
 * A real coturn (Debian's turnserver 4.6) for tests, on 127.0.0.1 with a port found at run time,
 * long-term credentials and --allow-loopback-peers (every peer in these tests is loopback).
 * Started per test and killed by PID in t.after. Without coturn: fail under CI=true, otherwise
 * skip loudly.
 */

export const TURN_USER = 'alice';
export const TURN_PASSWORD = 'secret123';
export const TURN_REALM = 'relay.test';

export function haveCoturn(t: TestContext, what: string): boolean {
  if (spawnSync('sh', ['-c', 'command -v turnserver']).status === 0) return true;
  const msg = `coturn is not installed (apt-get install -y coturn): ${what} NOT RUN`;
  if (process.env.CI === 'true') assert.fail(msg);
  console.warn(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return false;
}

/** A port free on 127.0.0.1 for both UDP and TCP right now (turnserver listens on both). */
export async function freeUdpTcpPort(): Promise<number> {
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

export interface Coturn {
  readonly address: string;
  readonly port: number;
  /** Everything turnserver printed so far, for failure messages. */
  log(): string;
}

/** Starts turnserver and waits until it answers a Binding request. `extra` adds flags (e.g. --stale-nonce=1). */
export async function startCoturn(t: TestContext, extra: readonly string[] = []): Promise<Coturn> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-coturn-'));
  const port = await freeUdpTcpPort();
  const child = spawn(
    'turnserver',
    [
      '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
      '--lt-cred-mech', `--user=${TURN_USER}:${TURN_PASSWORD}`, `--realm=${TURN_REALM}`,
      '--fingerprint', '--no-tls', '--no-dtls', '--no-cli', '--no-rfc5780', '--allow-loopback-peers',
      '--log-file=stdout', '--simple-log', `--pidfile=${join(dir, 'turnserver.pid')}`, `--userdb=${join(dir, 'turndb')}`,
      ...extra,
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
    rmSync(dir, { recursive: true, force: true });
  });
  await waitForStun('127.0.0.1', port, () => log);
  return { address: '127.0.0.1', port, log: () => log };
}

/** Polls with Binding requests until the server answers (10 s at most). */
async function waitForStun(address: string, port: number, log: () => string): Promise<void> {
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  try {
    const answered = new Promise<void>((resolve) => s.on('message', (m) => {
      try {
        if (decodeStunDatagram(m)?.cls === 'success') resolve();
      } catch {
        /* keep waiting */
      }
    }));
    const end = Date.now() + 10_000;
    let done = false;
    void answered.then(() => (done = true));
    while (!done) {
      if (Date.now() > end) throw new Error(`turnserver did not answer on ${address}:${port}; its log:\n${log()}`);
      s.send(encodeStunMessage(stunMessage('request', StunMethod.Binding, randomTransactionId())), port, address);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    s.close();
  }
}

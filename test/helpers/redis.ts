import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { freePort } from './net.js';
import { havePeer } from './peers.js';

/** A real redis-server (Debian package redis-server) on 127.0.0.1, without persistence. */
export interface RedisPeer {
  readonly port: number;
  readonly url: string;
  /** kill -9: the server and its data are gone; clients see connection errors. */
  kill(): Promise<void>;
  /** Starts a fresh, empty server on the same port (as a Redis restart without persistence does). */
  restart(): Promise<void>;
  /** One command over a fresh connection; its reply as raw RESP text (tests read INFO, ZCARD...). */
  command(...args: string[]): Promise<string>;
}

/**
 * Starts redis-server for the test, or skips loudly (fails under CI) when it is not installed.
 * `args` replace the defaults' listening part: `['--port', '0', '--tls-port', P, ...]` for TLS
 * (`port` is then the TLS port), or a config file and `--sentinel` for a Sentinel.
 */
export async function startRedis(t: TestContext, opts: { args?: (port: number) => string[] } = {}): Promise<RedisPeer | undefined> {
  if (!havePeer(t, 'redis-server', 'redis-server')) return undefined;
  const port = await freePort('tcp');
  let child: ChildProcess | undefined;
  const args = opts.args?.(port) ?? ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
  const start = async () => {
    const c = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (out += d));
    child = c;
    const end = Date.now() + 10_000;
    while (!/Ready to accept connections|Sentinel ID is/.test(out)) {
      if (c.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
      if (Date.now() > end) throw new Error(`redis-server did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  };
  await start();
  t.after(kill);
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill,
    restart: start,
    command: (...args) => rawCommand(port, args),
  };
}

function rawCommand(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d.toString('utf8')));
    s.on('error', reject);
    s.on('close', () => resolve(out.replace(/\+OK\r\n$/, ''))); // the QUIT's reply
    const enc = (a: string[]) => `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`;
    s.write(enc(args) + enc(['QUIT']));
  });
}

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { freePort, readAll, tcpServer, udpClient, udpEcho, waitFor } from '../../helpers/net.js';

/**
 * What every deployment form must do: run a config with one UDP and one TCP route (to echo
 * upstreams on 127.0.0.1) and an admin listener, and pass bytes both ways through each.
 */
export interface RoutesUnderTest {
  readonly yaml: string;
  readonly udpPort: number;
  readonly tcpPort: number;
  readonly adminPort: number;
}

export async function routesConfig(t: TestContext): Promise<RoutesUnderTest> {
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const [udpPort, tcpPort, adminPort] = [await freePort('udp'), await freePort('tcp'), await freePort('tcp')];
  const yaml = `routes:
  game:
    listen: udp://127.0.0.1:${udpPort}
    upstream: 127.0.0.1:${echo.port}
  shell:
    listen: tcp://127.0.0.1:${tcpPort}
    upstream: 127.0.0.1:${up.port}
admin: { listen: 127.0.0.1:${adminPort} }
lifecycle: { drainTimeout: 1s }
`;
  return { yaml, udpPort, tcpPort, adminPort };
}

/**
 * Sends a datagram and a TCP stream (with half-close) through the routes and checks the echoed
 * bytes; returns the UDP datapath the process reports (`sluice_datapath_info`).
 */
export async function assertRelays(t: TestContext, r: RoutesUnderTest, startTimeoutMs = 20_000): Promise<string> {
  const c = await udpClient(t);
  const payload = Buffer.from(`udp-${r.udpPort}-\u00e9\u0000end`);
  await waitFor(() => {
    if (c.inbox.length === 0) c.send(r.udpPort, payload);
    return c.inbox.length > 0;
  }, `an answer through udp://127.0.0.1:${r.udpPort}`, startTimeoutMs);
  assert.deepEqual(c.inbox[0], payload);

  const s = await connectWithRetry(r.tcpPort, startTimeoutMs);
  const stream = Buffer.alloc(200_000, 7);
  s.end(stream);
  assert.deepEqual(await readAll(s), stream, 'the TCP stream comes back whole, and its half-close too');

  // The admin listener binds last, once every part of the node is up (a gateway may still be
  // making its certificate when the routes already relay).
  const until = Date.now() + startTimeoutMs;
  let metrics = '';
  while (metrics === '') {
    metrics = await fetch(`http://127.0.0.1:${r.adminPort}/metrics`).then((res) => res.text(), () => '');
    if (metrics !== '') break;
    if (Date.now() > until) throw new Error(`timed out waiting for the admin listener on 127.0.0.1:${r.adminPort}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  const kind = /^sluice_datapath_info\{kind="(\w+)"\} 1$/m.exec(metrics)?.[1];
  assert.ok(kind, 'the admin API reports the datapath');
  assert.match(metrics, /^sluice_route_up\{route="game"\} 1$/m);
  assert.match(metrics, /^sluice_route_up\{route="shell"\} 1$/m);
  return kind;
}

export async function connectWithRetry(port: number, timeoutMs: number): Promise<net.Socket> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    try {
      await once(s, 'connect');
      s.on('error', () => {});
      return s;
    } catch (err) {
      s.destroy();
      if (Date.now() > end) throw err;
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

/** A child process whose output is kept; killed (by PID) when the test ends. */
export function startProcess(t: TestContext, command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, exited, output: () => out };
}

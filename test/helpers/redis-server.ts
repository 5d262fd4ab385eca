import { spawn } from 'node:child_process';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { freePort } from './net.js';
import { havePeer } from './peers.js';

/** One PING over RESP; true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/**
 * A real redis-server (Debian's) on 127.0.0.1 and a free port, without persistence, killed by
 * PID when the test ends. Undefined (the test skipped loudly, or failed under CI) when absent.
 */
export async function startRedis(t: TestContext): Promise<{ port: number; url: string; kill: () => void } | undefined> {
  if (!havePeer(t, 'redis-server', 'redis-server')) return undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const kill = () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    };
    t.after(kill);
    const end = Date.now() + 5000;
    while (Date.now() < end && child.exitCode === null) {
      if (await ping(port)) return { port, url: `redis://127.0.0.1:${port}/0`, kill };
      await new Promise((r) => setTimeout(r, 50));
    }
    kill();
  }
  throw new Error('redis-server did not answer PING on a free port after 5 attempts');
}

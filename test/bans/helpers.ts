import net from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { tcpServer } from '../helpers/net.js';

/** Resolves when the relay closed the client's connection (FIN or reset). */
export function ended(s: net.Socket): Promise<void> {
  if (s.readableEnded || s.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    for (const e of ['end', 'close', 'error']) s.once(e, () => resolve());
  });
}

/**
 * Writes `ping` and resolves true when the relay closes the connection instead of echoing
 * (a refused client), false when bytes come back. Destroys the socket after.
 */
export async function refusedAfterConnect(s: net.Socket): Promise<boolean> {
  await once(s, 'connect');
  s.write('ping');
  const r = await Promise.race([new Promise<boolean>((resolve) => s.once('data', () => resolve(false))), ended(s).then(() => true)]);
  s.destroy();
  return r;
}

export async function echoUpstream(t: TestContext) {
  return tcpServer(t, (s) => {
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  });
}

/**
 * Client sockets destroyed before the test's apps stop: call before tempDir, since t.after hooks
 * run in order and an app's graceful stop waits for live connections on a manual clock.
 */
export function clientSockets(t: TestContext): net.Socket[] {
  const sockets: net.Socket[] = [];
  t.after(() => sockets.forEach((s) => s.destroy()));
  return sockets;
}

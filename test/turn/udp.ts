import dgram from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import type { Endpoint } from '../../src/core/address.js';

/**
 * A UDP socket on 127.0.0.1:0, closed in t.after, after `beforeClose` (which may still need the
 * socket, e.g. to delete a TURN allocation) has finished.
 */
export async function udpSocket(t: TestContext, beforeClose?: () => Promise<unknown>): Promise<{ socket: dgram.Socket; local: Endpoint }> {
  const ac = new AbortController();
  const socket = dgram.createSocket({ type: 'udp4', signal: ac.signal });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.after(async () => {
    await beforeClose?.();
    ac.abort();
    await once(socket, 'close').catch(() => {});
  });
  return { socket, local: { address: '127.0.0.1', port: socket.address().port, family: 4 } };
}

/** Polls `cond` every 5 ms until it holds; fails after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

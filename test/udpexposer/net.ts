import dgram from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

/** A UDP socket on 127.0.0.1:0 that records what it receives; closed after the test. */
export async function udpPeer(t: TestContext, onMessage?: (msg: Buffer, rinfo: dgram.RemoteInfo, s: dgram.Socket) => void) {
  const socket = dgram.createSocket('udp4');
  const inbox: { msg: Buffer; from: dgram.RemoteInfo }[] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (msg, from) => {
    inbox.push({ msg, from });
    onMessage?.(msg, from, socket);
    for (const w of waiters.splice(0)) w();
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.after(() => new Promise<void>((r) => socket.close(() => r())).catch(() => undefined));
  const port = socket.address().port;
  return {
    socket,
    port,
    inbox,
    send(buf: Buffer | string, toPort: number, toHost = '127.0.0.1') {
      socket.send(typeof buf === 'string' ? Buffer.from(buf) : buf, toPort, toHost);
    },
    /** Resolves with the next message not yet taken, or rejects after `ms`. */
    async next(ms = 2000): Promise<{ msg: Buffer; from: dgram.RemoteInfo }> {
      const deadline = Date.now() + ms;
      while (inbox.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no datagram within ${ms} ms on port ${port}`);
        await new Promise<void>((r) => {
          const timer = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(timer);
            r();
          });
        });
      }
      return inbox.shift()!;
    },
  };
}

/** A UDP echo service (the "real server" behind the NAT). */
export function echoServer(t: TestContext) {
  return udpPeer(t, (msg, from, s) => s.send(msg, from.port, from.address));
}

export async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

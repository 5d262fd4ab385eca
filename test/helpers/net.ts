import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

/** Polls `cond` until true or `timeoutMs` passes; fails with `what` on timeout. */
export async function waitFor(cond: () => boolean, what = 'condition', timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A UDP echo upstream on 127.0.0.1:0 that remembers which source ports it has seen. */
export async function udpEcho(t: TestContext, opts: { prefix?: string } = {}) {
  const sock = dgram.createSocket('udp4');
  const sources = new Set<number>();
  let received = 0;
  sock.on('message', (msg, r) => {
    received++;
    sources.add(r.port);
    sock.send(opts.prefix ? Buffer.concat([Buffer.from(opts.prefix), msg]) : msg, r.port, r.address);
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => sock.close());
  return { port: sock.address().port, sources, get received() { return received; }, socket: sock };
}

/** A UDP client bound to 127.0.0.1:0 that queues what it receives. */
export async function udpClient(t: TestContext) {
  const sock = dgram.createSocket('udp4');
  const inbox: Buffer[] = [];
  const waiters: (() => void)[] = [];
  sock.on('message', (msg) => {
    inbox.push(msg);
    waiters.splice(0).forEach((w) => w());
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => {
    try {
      sock.close();
    } catch {
      /* already closed */
    }
  });
  return {
    socket: sock,
    port: sock.address().port,
    inbox,
    send(port: number, data: string | Buffer) {
      sock.send(typeof data === 'string' ? Buffer.from(data) : data, port, '127.0.0.1');
    },
    /** Resolves with the next datagram, or rejects after `timeoutMs`. */
    async next(timeoutMs = 3000): Promise<Buffer> {
      const end = Date.now() + timeoutMs;
      while (inbox.length === 0) {
        if (Date.now() > end) throw new Error('no datagram received');
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(Math.max(1, end - Date.now()))]);
      }
      return inbox.shift()!;
    },
  };
}

/** A TCP echo upstream with half-open support; `onSocket` replaces the echo behaviour. */
export async function tcpServer(t: TestContext, onSocket?: (s: net.Socket) => void) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (onSocket) onSocket(s);
    else s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, sockets, server };
}

/** Connects to 127.0.0.1:port with half-open allowed. */
export async function tcpConnect(t: TestContext, port: number): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  s.on('error', () => {});
  t.after(() => s.destroy());
  await once(s, 'connect');
  return s;
}

/** Reads until the peer's FIN (or close); returns everything read. */
export function readAll(s: net.Socket, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error('readAll timed out')), timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    const done = () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    };
    s.once('end', done);
    s.once('close', done);
  });
}

/**
 * A TCP port on 127.0.0.1 that refuses connections for the whole test: the local end of a
 * connection to a throwaway listener holds it, so no other test can listen there meanwhile. (A
 * port from freePort() can be taken again by a test running beside this one, which turns a
 * refused dial into a live connection that never ends.)
 */
export async function refusedPort(t: TestContext): Promise<number> {
  const accepted: net.Socket[] = [];
  const srv = net.createServer((s) => accepted.push(s.on('error', () => {})));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const holder = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1').on('error', () => {});
  await once(holder, 'connect');
  t.after(() => {
    holder.destroy();
    for (const s of accepted) s.destroy();
    srv.close();
  });
  return holder.localPort!;
}

/** A port that was free a moment ago (for peers that need a number in their config). */
export async function freePort(kind: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  if (kind === 'udp') {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    const p = s.address().port;
    s.close();
    return p;
  }
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const p = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return p;
}

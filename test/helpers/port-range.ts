import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';

/**
 * Fixed port ranges for tests (port 0 cannot ask for a range): bases are drawn below the
 * ephemeral ports (10000-31000 here) so clients' own sockets do not land in them.
 */
const LOW = 10_000;
const HIGH = 31_000;
const TRIES = 20;

/**
 * Runs `attempt` with a random base until it succeeds (TRIES at most); `attempt` binds
 * `count` ports from the base and throws (after releasing what it bound) when one is taken.
 */
export async function withFreeRange<T>(count: number, attempt: (base: number) => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < TRIES; i++) {
    const base = LOW + Math.floor(Math.random() * (HIGH - LOW - count));
    try {
      return await attempt(base);
    } catch (err) {
      last = err;
      const text = `${(err as Error).message} ${String((err as { cause?: Error }).cause?.message ?? '')}`;
      if (!/EADDRINUSE|EACCES/.test(text)) throw err;
    }
  }
  throw new Error(`no free range of ${count} ports after ${TRIES} tries`, { cause: last });
}

/** Binds `count` UDP sockets on 127.0.0.1 from `base` on, or releases them all and throws. */
export async function bindUdpRange(base: number, count: number, onMessage: (s: dgram.Socket, msg: Buffer, r: dgram.RemoteInfo) => void): Promise<dgram.Socket[]> {
  const out: dgram.Socket[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = dgram.createSocket('udp4');
      out.push(s);
      s.on('message', (msg, r) => onMessage(s, msg, r));
      s.once('error', () => undefined);
      s.bind(base + i, '127.0.0.1');
      await Promise.race([once(s, 'listening'), once(s, 'error').then(([e]) => Promise.reject(e))]);
    }
    return out;
  } catch (err) {
    await Promise.all(out.map((s) => new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } })));
    throw err;
  }
}

/** Binds `count` TCP servers on 127.0.0.1 from `base` on, or closes them all and throws. */
export async function bindTcpRange(base: number, count: number, onSocket: (server: net.Server, s: net.Socket) => void): Promise<net.Server[]> {
  const out: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = net.createServer((s) => onSocket(srv, s));
      out.push(srv);
      srv.listen({ port: base + i, host: '127.0.0.1', exclusive: true });
      await Promise.race([once(srv, 'listening'), once(srv, 'error').then(([e]) => Promise.reject(e))]);
    }
    return out;
  } catch (err) {
    await Promise.all(out.map((s) => new Promise<void>((r) => s.close(() => r()))));
    throw err;
  }
}

import net from 'node:net';
import { once } from 'node:events';
import { canonicalIp, type Endpoint } from '../core/address.js';
import { relaySealed } from './sealed-relay.js';
import type { DialInFlight, StreamConn, StreamDatapath, StreamListener } from './stream-datapath.js';

/**
 * The stream datapath on Node's `net`: one libuv handle and one JavaScript stream per connection,
 * bytes copied through JavaScript buffers. Joined pairs are relayed by the route as Node streams
 * (session/tcp-relay.ts), so `pipe` never joins here.
 */
export const jsStreamDatapath: StreamDatapath = {
  kind: 'js',

  async listen(host: string, port: number, onConnection: (conn: StreamConn) => void): Promise<StreamListener> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
    try {
      const listening = once(server, 'listening');
      server.listen({ host, port, backlog: 4096, exclusive: true });
      await listening;
    } catch (err) {
      server.close();
      throw err;
    }
    server.on('connection', (sock: net.Socket) => {
      sock.on('error', ignore); // errors before a relay starts: the outcome of what the route waits for decides
      onConnection(new JsStreamConn(sock));
    });
    // Accept errors (EMFILE under a flood) must not take the process down; the listener keeps going.
    server.on('error', () => {});
    const a = server.address() as net.AddressInfo;
    const local = endpoint(a.address, a.port);
    let closed: Promise<void> | undefined;
    return { local, close: () => (closed ??= new Promise<void>((resolve) => server.close(() => resolve()))) };
  },

  dial(remote: Endpoint, timeoutMs: number, done: (err: Error | undefined, conn?: StreamConn) => void): DialInFlight {
    const sock = net.connect({ host: remote.address, port: remote.port, allowHalfOpen: true, noDelay: true, ...(timeoutMs > 0 ? { timeout: timeoutMs } : {}) });
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      done(err);
    };
    sock.once('error', fail);
    sock.once('timeout', () => fail(Object.assign(new Error(`connect ETIMEDOUT ${remote.address}:${remote.port}`), { code: 'ETIMEDOUT', syscall: 'connect' })));
    sock.once('connect', () => {
      if (settled) return;
      settled = true;
      // Errors before a relay starts (an idle connection reset by its peer) are the relay's to see.
      sock.off('error', fail).on('error', ignore).removeAllListeners('timeout').setTimeout(0);
      done(undefined, new JsStreamConn(sock));
    });
    return {
      cancel: () => {
        if (settled) return;
        settled = true;
        sock.destroy();
      },
    };
  },

  pipe: () => undefined,

  /** The TypeScript sealed relay over the two sockets (sealed-relay.ts). */
  pipeSealed: (plain, sealed, keys, idleTimeoutMs, onEnd, keep) => relaySealed(plain.socket(), sealed.socket(), keys, idleTimeoutMs, onEnd, keep),
};

function ignore(): void {}

function endpoint(address: string | undefined, port: number | undefined): Endpoint {
  const ip = canonicalIp(address ?? '0.0.0.0') ?? { address: '0.0.0.0', family: 4 as const };
  return { address: ip.address, port: port ?? 0, family: ip.family };
}

/** A Node socket someone else accepted (a shared listener's), behind the seam. */
export function jsStreamConn(sock: net.Socket): StreamConn {
  return new JsStreamConn(sock);
}

/** A Node socket behind the seam; `socket()` is the socket itself. */
class JsStreamConn implements StreamConn {
  constructor(private readonly sock: net.Socket) {}

  get remote(): Endpoint | undefined {
    const ip = canonicalIp(this.sock.remoteAddress ?? '');
    return ip && { address: ip.address, port: this.sock.remotePort ?? 0, family: ip.family };
  }

  get local(): Endpoint {
    return endpoint(this.sock.localAddress, this.sock.localPort);
  }

  get destroyed(): boolean {
    return this.sock.destroyed;
  }

  get bytesRead(): number {
    return this.sock.bytesRead;
  }

  get bytesWritten(): number {
    return this.sock.bytesWritten;
  }

  socket(): net.Socket {
    return this.sock;
  }

  writeFirst(buf: Buffer): boolean {
    return this.sock.write(buf);
  }

  destroy(): void {
    this.sock.destroy();
  }

  reset(): void {
    this.sock.resetAndDestroy();
  }

  keepAlive(idleS: number): void {
    this.sock.setKeepAlive(true, idleS * 1000); // Node sets the idle time only: the system's interval and count
  }
}

import type { Socket } from 'node:net';
import type { StreamConn } from '../datapath/stream-datapath.js';
import { isHeldConn } from '../listen/held-proxy-header.js';

const EAGAIN = -11;

/**
 * Reads exactly `n` bytes from the start of a connection the datapath still holds, never more (so
 * nothing past them is taken from the socket): through the datapath for a held native connection,
 * through its Node socket otherwise. Undefined when it ended, failed or `expired` resolved first.
 */
export async function readConnPrefix(conn: StreamConn, n: number, expired: Promise<void>): Promise<Buffer | undefined> {
  if (!isHeldConn(conn)) return readSocketPrefix(conn.socket(), n, expired);
  const buf = Buffer.allocUnsafe(n);
  let got = 0;
  let over = false;
  void expired.then(() => (over = true));
  while (got < n) {
    const r = conn.read(buf.subarray(got));
    if (r > 0) got += r;
    else if (r === EAGAIN && !conn.destroyed) await Promise.race([conn.readable(), expired]);
    else return undefined;
    if (over) return undefined;
  }
  return buf;
}

function readSocketPrefix(sock: Socket, n: number, expired: Promise<void>): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (b: Buffer | undefined) => {
      if (done) return;
      done = true;
      sock.off('readable', onReadable).off('end', onGone).off('close', onGone);
      resolve(b);
    };
    const onReadable = () => {
      const b = sock.read(n) as Buffer | null;
      if (b) finish(b);
    };
    const onGone = () => finish(undefined);
    sock.on('readable', onReadable).once('end', onGone).once('close', onGone);
    void expired.then(onGone);
    onReadable();
  });
}

/** The connection as a Node socket with `prefix` put back in front of what it has not read yet. */
export function socketWithPrefix(conn: StreamConn, prefix: Buffer): Socket {
  if (isHeldConn(conn)) {
    conn.unread = conn.unread ? Buffer.concat([prefix, conn.unread]) : prefix;
    return conn.socket();
  }
  const sock = conn.socket();
  sock.unshift(prefix);
  return sock;
}

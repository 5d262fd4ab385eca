import type { StreamConn } from './stream-datapath.js';

/** A connection the datapath still holds, which says when it is readable (native: NativeConn). */
interface Readable {
  readable(): Promise<void>;
}

/**
 * Watches a connection that nothing may arrive on while it waits (an idle pooled data connection):
 * `gone` is called once when it turns readable (bytes, a FIN, a reset) or is destroyed. The returned
 * unwatch ends the watch before the connection's user reads it. Nothing is read here.
 */
export function watchSilent(conn: StreamConn, gone: () => void): () => void {
  let on = true;
  if (typeof (conn as Partial<Readable>).readable === 'function') {
    void (conn as unknown as Readable).readable().then(() => {
      if (!on) return;
      on = false;
      gone();
    });
    return () => void (on = false);
  }
  const sock = conn.socket();
  const fire = (): void => {
    if (!on) return;
    unwatch();
    gone();
  };
  const unwatch = (): void => {
    on = false;
    sock.off('readable', fire).off('close', fire);
  };
  sock.on('readable', fire).on('close', fire);
  return unwatch;
}

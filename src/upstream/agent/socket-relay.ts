import type { Socket } from 'node:net';
import type { EndReason } from '../../observe/events.js';
import type { SocketRelayOutcome } from '../dialer.js';

/**
 * Where received data goes instead of a stream's readable side: the merged chunks of each socket
 * read, then the peer's FIN. The sink gives credit back with `consumed`.
 */
export interface StreamSink {
  data(chunk: Buffer): void;
  end(): void;
}

/** What the relay needs of a tunnel stream (TunnelStream), besides being destroyable and closing. */
export interface RelayedStream {
  readonly destroyed: boolean;
  /** Both directions ended (FIN sent and received). */
  readonly finished: boolean;
  attachSink(sink: StreamSink): void;
  consumed(bytes: number): void;
  writeDirect(chunk: Buffer, done: () => void): void;
  endDirect(): void;
  destroy(): void;
  on(event: 'error' | 'close', fn: () => void): unknown;
}

/**
 * Relays a socket and a tunnel stream without Node's pipe() or the stream's readable and writable
 * sides: the socket's reads go out as STREAM_DATA (writeDirect), the stream's received chunks go
 * straight into the socket (attachSink). The contract is relayTcp's (session/tcp-relay.ts), with
 * `sock` in the client's place: a FIN either way is forwarded as a FIN; `stop` destroys both
 * (a stream not finished is reset `cancel`); `onDone` runs once both are closed, with the socket's
 * counters; `idleTimeoutMs` of no bytes on the socket ends both.
 *
 * Backpressure stays bounded: a socket read waits (the socket paused) until its bytes fit the
 * peer's window and the channel's backlog; received bytes give their credit back once the socket
 * took them (its write returned true, or at 'drain'), so the socket buffers at most the window.
 */
export function relaySocketToStream(
  sock: Socket,
  stream: RelayedStream,
  idleTimeoutMs: number,
  onDone: (outcome: SocketRelayOutcome) => void,
): (reason: EndReason) => void {
  let reason: EndReason | undefined;
  let open = 2;
  /** Bytes written to the socket whose credit waits for 'drain'. */
  let unreleased = 0;
  /** A socket read not yet sent (the window or the channel is full). */
  let sending = false;
  let sockEnded = false;
  const stop = (why: EndReason): void => {
    reason ??= why;
    sock.destroy();
    stream.destroy();
  };
  const onClosed = (): void => {
    if (--open > 0) return;
    onDone({ reason: reason ?? 'client-closed', bytesFromClient: sock.bytesRead, bytesToClient: sock.bytesWritten });
  };
  const endUp = (): void => {
    stream.endDirect();
    if (stream.finished) stream.destroy();
  };
  const sent = (): void => {
    sending = false;
    if (sockEnded) endUp();
    else sock.resume();
  };
  stream.attachSink({
    data(chunk) {
      if (sock.destroyed) return;
      if (sock.write(chunk)) stream.consumed(chunk.length);
      else unreleased += chunk.length;
    },
    end() {
      reason ??= 'upstream-closed';
      sock.end();
      if (stream.finished) stream.destroy();
    },
  });
  sock.on('drain', () => {
    if (unreleased === 0) return;
    const n = unreleased;
    unreleased = 0;
    stream.consumed(n);
  });
  sock.on('data', (chunk: Buffer) => {
    sending = true;
    stream.writeDirect(chunk, sent);
    if (sending) sock.pause();
  });
  sock.on('end', () => {
    reason ??= 'client-closed';
    sockEnded = true;
    if (!sending) endUp();
  });
  sock.on('error', () => stop('client-error'));
  stream.on('error', () => stop('upstream-error'));
  sock.on('timeout', () => stop('idle-timeout'));
  sock.on('close', onClosed);
  stream.on('close', onClosed);
  if (idleTimeoutMs > 0) sock.setTimeout(idleTimeoutMs);
  sock.resume();
  return stop;
}

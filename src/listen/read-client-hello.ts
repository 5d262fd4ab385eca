import type { Socket } from 'node:net';
import type { Clock } from '../core/clock.js';
import { ClientHelloReader, type ClientHello, type ClientHelloError } from '../protocol/tls/client-hello.js';

export type HelloOutcome =
  | { readonly ok: true; readonly hello: ClientHello }
  | { readonly ok: false; readonly reason: ClientHelloError | 'timeout'; /** The bytes read (for a PROXY-signature check). */ readonly seen: Buffer };

/**
 * Reads a TLS ClientHello from a paused socket within `timeoutMs`, then puts every byte read back
 * (`unshift`) and leaves the socket paused, so whoever relays it next sends the stream unchanged.
 * The reader bounds the bytes held (protocol/tls/client-hello.ts caps).
 */
export function readClientHello(sock: Socket, clock: Clock, timeoutMs: number): Promise<HelloOutcome> {
  return new Promise((resolve) => {
    const reader = new ClientHelloReader();
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (outcome: HelloOutcome) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      sock.off('data', onData).off('end', onEnd).off('close', onEnd);
      sock.pause();
      if (outcome.ok && chunks.length > 0) sock.unshift(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      resolve(outcome);
    };
    const fail = (reason: ClientHelloError | 'timeout') => finish({ ok: false, reason, seen: Buffer.concat(chunks) });
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      const step = reader.push(chunk);
      if (step.kind === 'done') finish({ ok: true, hello: step.hello });
      else if (step.kind === 'error') fail(step.reason);
    };
    const onEnd = () => {
      const step = reader.end();
      if (step.kind === 'error') fail(step.reason);
    };
    const timer = clock.setTimeout(() => fail('timeout'), timeoutMs);
    sock.on('data', onData).once('end', onEnd).once('close', onEnd);
    sock.resume();
  });
}

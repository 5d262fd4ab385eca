import dgram from 'node:dgram';
import net from 'node:net';
import type { Endpoint } from '../../core/address.js';
import { errnoCode } from '../../core/errors.js';
import type { CheckOutcome } from './member-state.js';

/** Bytes a check expects back: `prefix` = the reply starts with them (hex:), else the reply contains them (text). */
export interface ExpectBytes {
  readonly bytes: Buffer;
  readonly match: 'prefix' | 'contains';
}

export function matches(reply: Buffer, expect: ExpectBytes): boolean {
  return expect.match === 'prefix' ? reply.length >= expect.bytes.length && reply.subarray(0, expect.bytes.length).equals(expect.bytes) : reply.includes(expect.bytes);
}

/** Most bytes a TCP check reads while looking for `expect`: a bound on what a member can make it hold. */
const MAX_TCP_CHECK_BYTES = 16_384;

/**
 * A TCP check of one member: connect, then optionally send `send` and read until `expect` is
 * seen. `ok` on success; `failed` on a refusal, a reset, a close before the expected bytes, or
 * when `signal` aborts (the check's timeout).
 */
export function tcpProbe(remote: Endpoint, send: Buffer | undefined, expect: ExpectBytes | undefined, signal: AbortSignal): Promise<CheckOutcome> {
  return new Promise<CheckOutcome>((resolve) => {
    let seen = Buffer.alloc(0);
    const s = net.connect({ host: remote.address, port: remote.port, family: remote.family });
    const done = (o: CheckOutcome) => {
      signal.removeEventListener('abort', onAbort);
      s.destroy();
      resolve(o);
    };
    const onAbort = () => done('failed');
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('error', () => done('failed'));
    s.once('close', () => done('failed'));
    s.once('connect', () => {
      if (send) s.write(send);
      if (!expect) return done('ok');
      s.on('data', (chunk: Buffer) => {
        seen = Buffer.concat([seen, chunk]).subarray(-MAX_TCP_CHECK_BYTES);
        if (matches(seen, expect)) done('ok');
      });
    });
  });
}

/**
 * A UDP check of one member from a socket connected to it (so only its replies are read): send
 * `send`, wait for a reply matching `expect` (any reply when absent). ICMP port unreachable
 * (ECONNREFUSED on the connected socket) is `refused`: down at once. No matching reply before
 * `signal` aborts is `failed`.
 */
export function udpProbe(remote: Endpoint, send: Buffer, expect: ExpectBytes | undefined, signal: AbortSignal): Promise<CheckOutcome> {
  return new Promise<CheckOutcome>((resolve) => {
    const s = dgram.createSocket(remote.family === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const done = (o: CheckOutcome) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      s.close();
      resolve(o);
    };
    const onAbort = () => done('failed');
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    s.on('error', (err) => done(errnoCode(err) === 'ECONNREFUSED' ? 'refused' : 'failed'));
    s.on('message', (msg) => {
      if (!expect || matches(msg, expect)) done('ok');
    });
    s.connect(remote.port, remote.address, () => {
      if (!settled) s.send(send);
    });
  });
}

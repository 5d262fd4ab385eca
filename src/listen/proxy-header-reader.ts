import type { Socket } from 'node:net';
import type { Clock, Timer } from '../core/clock.js';
import type { RejectReason } from '../observe/events.js';
import { startsWithProxySignature } from '../admission/proxy-trust.js';
import { decodeProxyHeader, isProxyHeaderError, type ProxyHeader } from '../protocol/proxy-protocol/index.js';

export type HeaderOutcome = { ok: true; header: ProxyHeader } | { ok: false; reason: RejectReason };

/**
 * Reads the PROXY header a trusted sender must put first on a paused socket, within `timeoutMs`
 * and `maxBytes` (v1 never needs more than 107). Bytes after the header are put back
 * (`unshift`) and the socket is left paused, so the relay sees the stream as the client sent it.
 */
export function readProxyHeader(sock: Socket, clock: Clock, timeoutMs: number, maxBytes: number): Promise<HeaderOutcome> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (outcome: HeaderOutcome, rest?: Buffer) => {
      timer.cancel();
      sock.off('data', onData).off('end', onEnd).off('close', onEnd);
      sock.pause();
      if (rest && rest.length > 0) sock.unshift(rest);
      resolve(outcome);
    };
    const decode = (final: boolean) => {
      const d = tryDecodeHeader(buf, maxBytes, final);
      if (d) done(d.outcome, buf.subarray(d.length));
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      decode(false);
    };
    const onEnd = () => decode(true);
    const timer = clock.setTimeout(() => done({ ok: false, reason: buf.length === 0 ? 'proxy-header-missing' : 'proxy-header-invalid' }), timeoutMs);
    sock.on('data', onData).once('end', onEnd).once('close', onEnd);
    sock.resume();
  });
}

/**
 * One decoding attempt over the bytes received so far (`final`: no more will come): the outcome
 * and the header's length (0 for a refusal), or undefined while more bytes are needed.
 */
export function tryDecodeHeader(buf: Buffer, maxBytes: number, final: boolean): { outcome: HeaderOutcome; length: number } | undefined {
  try {
    const r = decodeProxyHeader(buf, { maxV2HeaderBytes: maxBytes, final });
    if (r.kind === 'ok') return { outcome: { ok: true, header: r.header }, length: r.length };
    if (buf.length > maxBytes) return { outcome: { ok: false, reason: 'proxy-header-invalid' }, length: 0 };
  } catch (err) {
    return { outcome: { ok: false, reason: isProxyHeaderError(err) && err.reason === 'not-proxy' ? 'proxy-header-missing' : 'proxy-header-invalid' }, length: 0 };
  }
  return undefined;
}

/** What an untrusted sender's first bytes say: a PROXY signature, anything else, or nothing yet. */
export type FirstBytes = 'header' | 'clean' | 'undecided';

/**
 * For an untrusted sender on a route that accepts PROXY headers: waits for the client's first
 * bytes and tells whether they start a PROXY header (which must be refused, never parsed). The
 * bytes are put back and the socket left paused. A client that ends or closes first is `clean`
 * (the caller sees the socket state). With `wait`, resolves `undecided` when the deadline
 * passes with nothing conclusive; one more turn of the event loop is given first, so bytes the
 * kernel already holds are read even when the loop was late. Without it, waits as long as the
 * socket lives.
 */
export function sniffFirstBytes(sock: Socket, wait?: { readonly clock: Clock; readonly timeoutMs: number }): Promise<FirstBytes> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let timer: Timer | undefined;
    let settled = false;
    const done = (v: FirstBytes) => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      sock.off('data', onData).off('end', onEnd).off('close', onEnd);
      sock.pause();
      if (buf.length > 0) sock.unshift(buf);
      resolve(v);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const v = startsWithProxySignature(buf);
      if (v !== 'maybe') done(v === 'yes' ? 'header' : 'clean');
    };
    const onEnd = () => done('clean');
    if (wait !== undefined) timer = wait.clock.setTimeout(() => setImmediate(() => done('undecided')), wait.timeoutMs);
    sock.on('data', onData).once('end', onEnd).once('close', onEnd);
    sock.resume();
  });
}

/**
 * After the dial, for an untrusted sender whose first bytes were not seen before it: resolves
 * `true` for clean traffic. Never waits on its own timer: the relay's idle timeout bounds it, and
 * server-first protocols keep working because only the client-to-upstream direction waits.
 */
export function firstBytesAreClean(sock: Socket): Promise<boolean> {
  return sniffFirstBytes(sock).then((v) => v !== 'header');
}

import type { Socket } from 'node:net';
import type { RejectReason } from '../observe/events.js';
import { startsWithProxySignature } from '../admission/proxy-trust.js';
import { decodeProxyHeader, isProxyHeaderError, type ProxyHeader } from '../protocol/proxy-protocol/index.js';

export type HeaderOutcome = { ok: true; header: ProxyHeader } | { ok: false; reason: RejectReason };

/**
 * Reads the PROXY header a trusted sender must put first on a paused socket, within `timeoutMs`
 * and `maxBytes` (v1 never needs more than 107). Bytes after the header are put back
 * (`unshift`) and the socket is left paused, so the relay sees the stream as the client sent it.
 */
export function readProxyHeader(sock: Socket, timeoutMs: number, maxBytes: number): Promise<HeaderOutcome> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (outcome: HeaderOutcome, rest?: Buffer) => {
      clearTimeout(timer);
      sock.off('data', onData).off('end', onEnd).off('close', onEnd);
      sock.pause();
      if (rest && rest.length > 0) sock.unshift(rest);
      resolve(outcome);
    };
    const decode = (final: boolean) => {
      try {
        const r = decodeProxyHeader(buf, { maxV2HeaderBytes: maxBytes, final });
        if (r.kind === 'ok') return done({ ok: true, header: r.header }, buf.subarray(r.length));
        if (buf.length > maxBytes) done({ ok: false, reason: 'proxy-header-invalid' });
      } catch (err) {
        done({ ok: false, reason: isProxyHeaderError(err) && err.reason === 'not-proxy' ? 'proxy-header-missing' : 'proxy-header-invalid' });
      }
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      decode(false);
    };
    const onEnd = () => decode(true);
    const timer = setTimeout(() => done({ ok: false, reason: buf.length === 0 ? 'proxy-header-missing' : 'proxy-header-invalid' }), timeoutMs);
    sock.on('data', onData).once('end', onEnd).once('close', onEnd);
    sock.resume();
  });
}

/**
 * For an untrusted sender on a route that accepts PROXY headers: waits for the client's first
 * bytes and tells whether they start a PROXY header (which must be refused, never parsed). The
 * bytes are put back and the socket left paused. Resolves `true` for clean traffic. Never waits
 * on its own timer: the relay's idle timeout bounds it, and server-first protocols keep working
 * because only the client-to-upstream direction waits.
 */
export function firstBytesAreClean(sock: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (clean: boolean) => {
      sock.off('data', onData).off('end', onEnd);
      sock.pause();
      if (buf.length > 0) sock.unshift(buf);
      resolve(clean);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const v = startsWithProxySignature(buf);
      if (v !== 'maybe') done(v === 'no');
    };
    const onEnd = () => done(true);
    sock.on('data', onData).once('end', onEnd);
    sock.resume();
  });
}

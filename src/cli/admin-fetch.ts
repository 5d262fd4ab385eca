import http from 'node:http';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { SluiceError } from '../core/errors.js';

/** How `sluice status` trusts an https:// admin listener. */
export interface AdminTrust {
  /** PEM file of the CA (or the self-signed certificate itself) the listener's certificate must chain to; the name is checked too. */
  readonly caFile?: string;
  /** `sha256:<hex>` of the listener's certificate: it must be exactly this one (no CA, no name check), like agent.fingerprint. */
  readonly fingerprint?: string;
  /** No check at all (a test bench); the token is then sent to whoever answers. */
  readonly insecure?: boolean;
}

/**
 * A fetch for https:// admin URLs with the trust above. The certificate is checked after the
 * handshake and BEFORE the request is written, so the Bearer token never reaches a listener that
 * fails the check. Answers with a standard Response.
 */
export function adminFetch(trust: AdminTrust): typeof fetch {
  const ca = trust.caFile ? readPem(trust.caFile) : undefined;
  const pin = trust.fingerprint?.toLowerCase();
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const signal = init?.signal ?? undefined;
    const socket = tls.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 443),
      // An IP literal is not a valid SNI name; a pinned or CA-checked identity does not need it.
      servername: /^[\d.]+$|:/.test(url.hostname) ? '' : url.hostname,
      ca,
      rejectUnauthorized: pin === undefined && !trust.insecure,
    });
    const abort = () => socket.destroy(new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', 'timed out'));
    signal?.addEventListener('abort', abort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      if (pin !== undefined) {
        const got = `sha256:${socket.getPeerCertificate().fingerprint256.replace(/:/g, '').toLowerCase()}`;
        if (got !== pin) throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `the admin certificate is ${got}, not the pinned ${pin}`);
      }
      const headers = new Headers(init?.headers);
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request(
          { host: url.hostname, port: url.port, path: url.pathname + url.search, method: init?.method ?? 'GET', headers: Object.fromEntries(headers), createConnection: () => socket },
          resolve,
        );
        req.once('error', reject);
        req.end(typeof init?.body === 'string' ? init.body : undefined);
      });
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      return new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500 });
    } finally {
      signal?.removeEventListener('abort', abort);
      socket.destroy();
    }
  }) as typeof fetch;
}

function readPem(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_CONFIG_READ', `--ca: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'EIO'}`, { cause: err });
  }
}

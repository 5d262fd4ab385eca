import http from 'node:http';
import https from 'node:https';

/**
 * A request (GET unless told) over node:http with fetch's shape, for `sluice status` and `sluice bans`. The global fetch refuses the
 * ports the Fetch standard calls "bad" for browsers (1, 7, 9, 22, 25, 6000, 10080, ...) with
 * "bad port", but an admin listener may use any port. Rejects with the socket error (its
 * `code`, e.g. ECONNREFUSED) as `cause`, or with the signal's reason when it aborts.
 */
export function httpGet(url: URL | string, init: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {}): Promise<Response> {
  const u = new URL(url);
  const client = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(u, { method: init.method ?? 'GET', headers: init.headers, signal: init.signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 502, headers: { 'content-type': res.headers['content-type'] ?? '' } })));
      res.on('error', (err) => reject(new Error('the admin API closed the response early', { cause: err })));
    });
    req.on('error', (err) => {
      if (init.signal?.aborted) reject(init.signal.reason);
      else reject(new Error(err.message, { cause: err }));
    });
    req.end(init.body);
  });
}

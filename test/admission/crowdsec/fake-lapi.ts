import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

export interface SeenRequest {
  readonly path: string;
  readonly startup: string | null;
  readonly scopes: string | null;
  readonly apiKey: string | undefined;
  readonly userAgent: string | undefined;
}

export type Reply = { status?: number; body?: unknown; raw?: string; delayMs?: number; hangUp?: boolean };

/**
 * A stand-in Local API on 127.0.0.1:0: every request is recorded, and answered by `answer`
 * (default: 200 with empty lists; a wrong key gets 403 like the real LAPI). Closed in t.after.
 */
export async function fakeLapi(t: TestContext, key = 'good-key') {
  const seen: SeenRequest[] = [];
  let answer: (r: SeenRequest) => Reply = () => ({ body: { new: null, deleted: null } });
  const delayed = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const r: SeenRequest = {
      path: u.pathname,
      startup: u.searchParams.get('startup'),
      scopes: u.searchParams.get('scopes'),
      apiKey: req.headers['x-api-key'] as string | undefined,
      userAgent: req.headers['user-agent'],
    };
    seen.push(r);
    const reply: Reply = r.apiKey !== key ? { status: 403, body: { message: 'access forbidden' } } : answer(r);
    const send = () => {
      if (reply.hangUp) return req.socket.destroy();
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
      res.end(reply.raw ?? JSON.stringify(reply.body ?? null));
    };
    if (!reply.delayMs) return send();
    const timer = setTimeout(() => {
      delayed.delete(timer);
      send();
    }, reply.delayMs).unref();
    delayed.add(timer);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const timer of delayed) clearTimeout(timer);
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    seen,
    server,
    answer(fn: (r: SeenRequest) => Reply) {
      answer = fn;
    },
  };
}

let id = 100;
/** A LAPI decision (models.Decision) as the stream sends it. */
export function decision(scope: 'Ip' | 'Range', value: string, o: Record<string, unknown> = {}) {
  return { id: id++, origin: 'cscli', type: 'ban', scope, value, duration: '3h59m59.9s', scenario: 'test-ban', simulated: false, ...o };
}

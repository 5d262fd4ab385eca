import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { canonicalIp, formatHostPort, type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { AdminConfig } from '../config/observe-schema.js';
import type { RouteRuntime } from '../listen/route.js';
import { AdminAuth, presentsCredential } from './auth.js';
import { LoginThrottle } from './login-throttle.js';
import type { LiveHub } from './live-hub.js';
import type { RecentActivity } from './recent.js';
import { SOURCE_ORDERS, type SourceActivity, type SourceOrder, type SourceWindow } from './source-activity.js';
import { checkRequest } from './request-guard.js';
import { dashboardFiles, type StaticFile } from './static-files.js';
import { sessionsView, type RouteView } from './views.js';
import { bansApi, type BanList, type CrowdsecBans } from './bans-api.js';

export interface AdminServerDeps {
  readonly clock: Clock;
  readonly log: Logger;
  /** The node's routes right now, with the gateway's published services and the agent's connect listeners. */
  readonly routes: () => readonly RouteRuntime[];
  /** The body of /api/routes: the same routes with their kind, state and traffic (views.ts routeView). */
  readonly routeViews: () => RouteView[];
  /** The Prometheus exposition, or undefined when there is no registry. */
  readonly metrics: () => Promise<{ contentType: string; body: string } | undefined>;
  /** The body of /api/health beside `status` (recording outputs, conntrack state, ...). */
  readonly health: () => Record<string, unknown>;
  /** The body of /api/peers: the agent's peer links and connect listeners, the gateway's peer counters (src/ops/peer-view.ts). */
  readonly peers?: () => Record<string, unknown>;
  readonly recent: RecentActivity;
  /** Who is connected (/api/sources); absent = an empty list. */
  readonly sources?: SourceActivity;
  readonly live: LiveHub;
  /** The ban list behind /api/bans (admission/bans/bans.ts). */
  readonly bans?: () => BanList | undefined;
  /** CrowdSec's decisions, listed with the bans (read only); undefined without a `crowdsec:` section. */
  readonly crowdsecBans?: () => CrowdsecBans | undefined;
  /** The body of /api/fleet (docs/fleet.md); undefined: this node is not in a fleet (404). */
  readonly fleet?: () => Promise<unknown> | undefined;
  /** Per-source backoff for wrong credentials; kept by the caller so it outlives a listener change. Default: one of its own. */
  readonly throttle?: LoginThrottle;
}

/** Largest request body read (the login form). */
const MAX_BODY_BYTES = 4096;

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not no-referrer: under it Chromium sends `Origin: null` on the login form's POST, which the guard refuses.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
  'cross-origin-resource-policy': 'same-origin',
} as const;

/**
 * The admin HTTP listener: JSON API, /metrics, the live stream and the dashboard (docs/admin.md).
 * Every request passes the Host/Origin guard first (403), then the token check when a token is
 * configured (401). Owns its server and every connection on it; `close` ends them all.
 */
export class AdminServer {
  #auth: AdminAuth;
  readonly #throttle: LoginThrottle;

  readonly #files: Map<string, StaticFile>;
  #closed: Promise<void> | undefined;

  private constructor(
    private readonly server: http.Server,
    readonly config: AdminConfig,
    readonly address: Endpoint,
    private readonly deps: AdminServerDeps,
    /** Served over TLS: the cookie gets `Secure`, and Origin must be https://. */
    readonly secure: boolean,
  ) {
    this.#auth = new AdminAuth(config.token, secure);
    this.#throttle = deps.throttle ?? new LoginThrottle(deps.clock);
    this.#files = dashboardFiles();
  }

  /**
   * Binds `config.listen`, over HTTPS when `tls` (PEM certificate chain and key) is given; throws
   * SluiceError SLUICE_ERR_BIND when it cannot bind, SLUICE_ERR_CONFIG_INVALID when the
   * certificate or key is unusable.
   */
  static async start(config: AdminConfig, deps: AdminServerDeps, tls?: { cert: Buffer; key: Buffer }): Promise<AdminServer> {
    const options = { requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 };
    let server: http.Server;
    try {
      // TLS 1.2 at least (Node's default too); a slow handshake is cut like a slow request.
      server = tls ? https.createServer({ ...options, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', handshakeTimeout: 5_000 }) : http.createServer(options);
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `admin.tls: the certificate or key cannot be used: ${(err as Error).message}`, { cause: err });
    }
    server.maxConnections = 64;
    const where = formatHostPort(config.listen.host, config.listen.port);
    try {
      server.listen({ host: config.listen.host, port: config.listen.port, exclusive: true });
      await once(server, 'listening');
    } catch (err) {
      server.close();
      throw new SluiceError('SLUICE_ERR_BIND', `admin: cannot listen on ${where}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    const a = server.address() as { address: string; port: number; family: string };
    const address: Endpoint = { address: canonicalIp(a.address)?.address ?? a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
    const admin = new AdminServer(server, config, address, deps, tls !== undefined);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      admin.#handle(req, res).catch((err: unknown) => {
        deps.log.error({ err: (err as Error).message, path: pathOf(req) }, 'admin request failed');
        if (!res.headersSent) admin.#json(res, 500, { error: 'internal' });
        else res.destroy();
      });
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    return admin;
  }

  /** A reload with the same `listen`: the new token applies to the next request; cookies from the old one stop working. */
  setToken(token: string | undefined): void {
    this.#auth = new AdminAuth(token, this.secure);
  }

  /**
   * A reload with the same `listen` and `tls`: new handshakes use the certificate and key read
   * now (a renewed certificate takes effect on SIGHUP); open connections keep theirs.
   */
  setCertificate(tls: { cert: Buffer; key: Buffer }): void {
    if (!this.secure) return;
    try {
      (this.server as https.Server).setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' });
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `admin.tls: the certificate or key cannot be used: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Stops listening and ends every connection, live streams included. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.#closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refusal = checkRequest(req.headers, { host: this.config.listen.host, port: this.address.port, scheme: this.secure ? 'https' : 'http' });
    if (refusal) {
      this.deps.log.debug({ reason: refusal, path: pathOf(req), remote: req.socket.remoteAddress }, 'admin request refused');
      return this.#json(res, 403, { error: 'forbidden', reason: refusal });
    }
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';

    if (path === '/login') return method === 'POST' ? this.#login(req, res) : this.#loginPage(res, method, 200);
    if (path === '/logout') {
      if (method !== 'POST') return this.#json(res, 405, { error: 'method not allowed' }, { allow: 'POST' });
      return this.#send(res, 303, 'text/plain; charset=utf-8', '', { location: '/login', 'set-cookie': this.#auth.logoutCookie() });
    }
    if (path === '/dashboard.css' && method === 'GET') return this.#static(res, path); // the login page uses it; no data in it
    if (path === '/favicon.ico') return this.#send(res, 204, 'image/x-icon', ''); // browsers ask for it on every page

    if (this.#auth.required && presentsCredential(req.headers) && this.#throttled(req, res)) return;
    const verdict = this.#auth.check(req.headers);
    if (verdict !== 'ok') {
      if (verdict === 'wrong') this.#throttle.failed(req.socket.remoteAddress);
      if (path === '/' && method === 'GET') return this.#send(res, 303, 'text/plain; charset=utf-8', '', { location: '/login' });
      return this.#json(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer realm="sluice-admin"' });
    }
    if (this.#auth.required) this.#throttle.succeeded(req.socket.remoteAddress);
    if (path === '/api/bans') {
      const r = await bansApi(method, url, req, this.deps.bans?.(), this.#auth.required, async () => {
        const body = await readBody(req, MAX_BODY_BYTES);
        if (body === undefined) throw new Error(`larger than ${MAX_BODY_BYTES} bytes`);
        return JSON.parse(body) as unknown;
      }, this.deps.crowdsecBans?.());
      if (method !== 'GET') this.deps.log.info({ method, status: r.status, remote: req.socket.remoteAddress }, 'admin API: ban list change requested');
      return this.#json(res, r.status, r.body, r.headers);
    }
    if (method !== 'GET') return this.#json(res, 405, { error: 'method not allowed' }, { allow: 'GET' });

    const now = this.deps.clock.wallNow();
    const limit = intParam(url, 'limit');
    switch (path) {
      case '/':
      case '/dashboard.js':
        return this.#static(res, path);
      case '/api/health':
        return this.#json(res, 200, { status: 'ok', time: new Date(now).toISOString(), auth: this.#auth.required, ...this.deps.health() });
      case '/api/routes':
        return this.#json(res, 200, { routes: this.deps.routeViews() });
      case '/api/sessions':
        return this.#json(res, 200, sessionsView(this.deps.routes(), now, { route: url.searchParams.get('route') ?? undefined, limit }));
      case '/api/fleet': {
        const view = await this.deps.fleet?.();
        return view === undefined ? this.#json(res, 404, { error: 'not in a fleet (gateway.fleet is not set)' }) : this.#json(res, 200, view);
      }
      case '/api/peers':
        return this.#json(res, 200, this.deps.peers?.() ?? { agent: null, links: [], connect: [], counters: null, gateway: null });
      case '/api/flows':
        return this.#json(res, 200, { flows: this.deps.recent.flows.newest(limit) });
      case '/api/sources':
        return this.#sources(res, url);
      case '/api/denials':
        return this.#json(res, 200, { denials: this.deps.recent.denials.newest(limit) });
      case '/api/stream':
        if (!this.deps.live.open(res)) this.#json(res, 503, { error: 'too many live streams' });
        return;
      case '/metrics': {
        const m = await this.deps.metrics();
        if (!m) return this.#json(res, 404, { error: 'no metrics' });
        return this.#send(res, 200, m.contentType, m.body);
      }
      default:
        return this.#json(res, 404, { error: 'not found' });
    }
  }

  /**
   * Answers 429 (and returns true) when the request's source must still wait after wrong
   * credentials. Runs before any comparison, so the right token does not get through either.
   */
  #throttled(req: IncomingMessage, res: ServerResponse): boolean {
    const waitMs = this.#throttle.admit(req.socket.remoteAddress);
    if (waitMs === 0) return false;
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    this.#json(res, 429, { error: `too many wrong tokens from this address; retry in ${seconds} s` }, { 'retry-after': String(seconds) });
    return true;
  }

  async #login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#auth.required) return this.#send(res, 303, 'text/plain; charset=utf-8', '', { location: '/' });
    if (this.#throttled(req, res)) return;
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === undefined) return this.#json(res, 413, { error: 'body too large' });
    const json = (req.headers['content-type'] ?? '').startsWith('application/json');
    let token = '';
    try {
      token = json ? String((JSON.parse(body) as { token?: unknown }).token ?? '') : (new URLSearchParams(body).get('token') ?? '');
    } catch {
      token = '';
    }
    if (token !== '' && this.#auth.matchesToken(token)) {
      this.#throttle.succeeded(req.socket.remoteAddress);
      const cookie = { 'set-cookie': this.#auth.loginCookie() };
      return json ? this.#send(res, 204, 'text/plain; charset=utf-8', '', cookie) : this.#send(res, 303, 'text/plain; charset=utf-8', '', { ...cookie, location: '/' });
    }
    this.#throttle.failed(req.socket.remoteAddress);
    this.deps.log.warn({ remote: req.socket.remoteAddress }, 'admin login failed');
    return json ? this.#json(res, 401, { error: 'unauthorized' }) : this.#loginPage(res, 'GET', 401);
  }

  #loginPage(res: ServerResponse, method: string, status: number): void {
    if (method !== 'GET') return this.#json(res, 405, { error: 'method not allowed' }, { allow: 'GET, POST' });
    if (!this.#auth.required) return this.#send(res, 303, 'text/plain; charset=utf-8', '', { location: '/' });
    const f = this.#files.get('/login');
    if (!f) return this.#json(res, 404, { error: 'dashboard files not found' });
    const body = status === 401 ? f.body.toString('utf8').replace('<!--error-->', '<p class="error">That token is not right.</p>') : f.body;
    this.#send(res, status, f.type, body);
  }

  #static(res: ServerResponse, path: string, status = 200): void {
    const f = this.#files.get(path);
    if (!f) return this.#json(res, 404, { error: 'dashboard files not found' });
    this.#send(res, status, f.type, f.body);
  }

  /** GET /api/sources?window=1m|10m&by=sessions|bytes|rejections&limit=N (docs/admin.md). */
  #sources(res: ServerResponse, url: URL): void {
    const window = url.searchParams.get('window') ?? '1m';
    const by = url.searchParams.get('by') ?? 'sessions';
    if (window !== '1m' && window !== '10m') return this.#json(res, 400, { error: `window must be 1m or 10m, not "${window}"` });
    if (!(SOURCE_ORDERS as readonly string[]).includes(by)) return this.#json(res, 400, { error: `by must be one of ${SOURCE_ORDERS.join(', ')}, not "${by}"` });
    const limit = Math.min(intParam(url, 'limit') ?? DEFAULT_SOURCES_LISTED, MAX_SOURCES_LISTED);
    const live = this.deps.routes().flatMap((r) => r.sessions());
    const body = this.deps.sources?.top(window as SourceWindow, by as SourceOrder, limit, live) ?? { window, by, tracked: 0, sources: [] };
    return this.#json(res, 200, body);
  }

  #json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    this.#send(res, status, 'application/json; charset=utf-8', JSON.stringify(body), headers);
  }

  #send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0]!.slice(0, 200);
}

/** Sources listed at most by /api/sources, and by default. */
const MAX_SOURCES_LISTED = 500;
const DEFAULT_SOURCES_LISTED = 50;

function intParam(url: URL, name: string): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null || !/^\d{1,7}$/.test(v)) return undefined;
  return Number(v);
}

/** Reads at most `max` bytes; undefined (and the request drained no further) when it is longer. */
async function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > max) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

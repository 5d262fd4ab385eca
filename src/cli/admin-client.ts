import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatHostPort } from '../core/address.js';
import { isSluiceError } from '../core/errors.js';
import { formatIssue } from '../config/types.js';
import { loadConfigFile } from '../config/load.js';
import { certificateFingerprint } from '../gateway/certificate.js';
import { adminFetch } from './admin-fetch.js';
import { EXIT } from './exit-codes.js';
import { httpGet } from './http-get.js';

/** What the admin-API commands (`status`, `bans`) write to and read from. */
export interface AdminIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Default: node:http (./http-get.ts), or ./admin-fetch.ts for https://. */
  readonly fetch?: (url: URL, init: { method?: string; headers: Record<string, string>; body?: string; signal: AbortSignal }) => Promise<Response>;
}

/** The flags every admin-API command takes. */
export const ADMIN_FLAGS = { admin: 'string', token: 'string', config: 'string', ca: 'string', fingerprint: 'string', insecure: 'boolean' } as const;

export const ADMIN_FLAGS_HELP = `  --admin URL      the admin listener (http://127.0.0.1:9090, or host:port); env SLUICE_ADMIN
  --token TOKEN    the admin token, if one is set; env SLUICE_ADMIN_TOKEN (keeps it out of ps)
  --config FILE    read admin.listen and admin.token from the config file
  --ca FILE        https: trust this CA (or self-signed certificate) PEM; the name is checked
  --fingerprint F  https: accept exactly the certificate with this sha256:HEX (the admin
                   listener logs it); --config pins the configured certificate by itself
  --insecure       https: check nothing (the token goes to whoever answers)
`;

const DEFAULT_ADMIN = 'http://127.0.0.1:9090';
const TIMEOUT_MS = 5_000;

/** A request the admin API could not answer as asked; the message is for people. */
export class AdminCallError extends Error {}

/** One admin API, reached with a token and the https trust the flags chose. */
export interface AdminClient {
  readonly base: URL;
  /**
   * Sends one request. Throws AdminCallError when the API is unreachable, refuses the token
   * (401), refuses the request (403), or (unless `accept` lists it) answers another non-2xx status.
   */
  call(path: string, init?: { method?: string; body?: unknown; accept?: readonly number[] }): Promise<{ status: number; body: unknown }>;
}

/**
 * Where to ask: `--admin`, else `$SLUICE_ADMIN`, else `admin.listen` of `--config FILE`, else
 * http://127.0.0.1:9090. The token: `--token`, else `$SLUICE_ADMIN_TOKEN`, else `admin.token` of
 * `--config FILE`. Returns the client, or the exit code after writing what is wrong to stderr.
 */
export async function adminClient(flags: ReadonlyMap<string, string | true>, io: AdminIo, command: string): Promise<AdminClient | number> {
  const flag = (name: string) => {
    const v = flags.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  let fromConfig: { url?: string; token?: string; fingerprint?: string } = {};
  const configPath = flag('config');
  if (configPath) {
    const parsed = await loadConfigFile(configPath);
    if (!parsed.ok) {
      io.stderr.write(`sluice ${command}: ${configPath}: ${parsed.issues.length} problem(s)\n`);
      for (const issue of parsed.issues) io.stderr.write(`  ${formatIssue(issue)}\n`);
      return EXIT.configInvalid;
    }
    const admin = parsed.config.admin;
    if (!admin) {
      io.stderr.write(`sluice ${command}: ${configPath} has no admin: section, so there is no admin API to ask\n`);
      return EXIT.usage;
    }
    const host = admin.listen.host === '0.0.0.0' ? '127.0.0.1' : admin.listen.host === '::' ? '::1' : admin.listen.host;
    const pinned = admin.tls ? configuredFingerprint(admin.tls, parsed.config.gateway) : undefined;
    if (typeof pinned === 'object') {
      io.stderr.write(`sluice ${command}: ${pinned.error}\n`);
      return EXIT.usage;
    }
    fromConfig = { url: `${admin.tls ? 'https' : 'http'}://${formatHostPort(host, admin.listen.port)}`, token: admin.token, fingerprint: pinned };
  }

  const env = (name: string) => io.env[name] || undefined; // set but empty counts as unset
  const base = normaliseUrl(flag('admin') ?? env('SLUICE_ADMIN') ?? fromConfig.url ?? DEFAULT_ADMIN);
  if (typeof base === 'string') {
    io.stderr.write(`sluice ${command}: --admin: ${base}\n`);
    return EXIT.usage;
  }
  const token = flag('token') ?? env('SLUICE_ADMIN_TOKEN') ?? fromConfig.token;
  const ca = flag('ca');
  const fingerprint = flag('fingerprint') ?? (ca === undefined ? fromConfig.fingerprint : undefined);
  if (fingerprint !== undefined && !/^sha256:[0-9a-fA-F]{64}$/.test(fingerprint)) {
    io.stderr.write(`sluice ${command}: --fingerprint must be sha256: and 64 hex digits, got "${fingerprint}"\n`);
    return EXIT.usage;
  }
  let doFetch: NonNullable<AdminIo['fetch']> = io.fetch ?? httpGet;
  if (base.protocol === 'https:' && !io.fetch) {
    try {
      doFetch = adminFetch({ caFile: ca, fingerprint, insecure: flags.has('insecure') });
    } catch (err) {
      io.stderr.write(`sluice ${command}: ${(err as Error).message}\n`);
      return EXIT.usage;
    }
  }

  return {
    base,
    async call(path, init = {}) {
      let res: Response;
      try {
        res = await doFetch(new URL(path, base), {
          method: init.method ?? 'GET',
          headers: {
            accept: 'application/json',
            ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
          ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
      } catch (err) {
        throw new AdminCallError(`cannot reach the admin API at ${base}: ${reachError(err)} (is \`sluice run\` running with admin.listen set?)`);
      }
      if (res.status === 401) throw new AdminCallError(`the admin API at ${base} needs a valid token (401): pass --token or set SLUICE_ADMIN_TOKEN`);
      const body = (await res.json().catch(() => undefined)) as { reason?: string; error?: string } | undefined;
      if (res.status === 403) throw new AdminCallError(`the admin API at ${base} refused the request (403 ${body?.reason ?? body?.error ?? 'forbidden'})`);
      if (!res.ok && !init.accept?.includes(res.status)) {
        throw new AdminCallError(`the admin API at ${base} answered ${res.status} for ${path}${body?.error ? `: ${body.error}` : ''}`);
      }
      return { status: res.status, body };
    },
  };
}

/** The sha256 pin of the certificate `admin.tls` names, read from its file; `{ error }` when it cannot be read. */
function configuredFingerprint(tls: { cert: string; key: string } | 'gateway', gateway: { stateDir: string; tls: { cert: string } | undefined } | undefined): string | { error: string } {
  const path = tls === 'gateway' ? (gateway?.tls?.cert ?? join(gateway?.stateDir ?? '.', 'gateway-cert.pem')) : tls.cert;
  try {
    return certificateFingerprint(readFileSync(path));
  } catch (err) {
    return { error: `cannot read the admin certificate ${path} to pin it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (pass --fingerprint or --ca)` };
  }
}

/** `host:port` or an http(s) URL -> the URL, or what is wrong with it. */
function normaliseUrl(text: string): URL | string {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `http://${text}`;
  const port = /^[a-z]+:\/\/(?:\[[^\]]*\]|[^/:]*):(\d+)(?:\/|$)/i.exec(withScheme)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return `port ${port} is out of range (1-65535)`;
  try {
    const u = new URL(withScheme);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : `expected http://host:port, https://host:port or host:port, got "${text}"`;
  } catch {
    return `expected http://host:port, https://host:port or host:port, got "${text}"`;
  }
}

/** The socket error behind a failed request (connection refused, ...), or the timeout. */
function reachError(err: unknown): string {
  if (isSluiceError(err)) return err.message;
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000}s`;
  const code = e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED): nothing listens there';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host name does not resolve (${code})`;
  return code ?? e.cause?.message ?? e.message ?? String(err);
}

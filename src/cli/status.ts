import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatHostPort } from '../core/address.js';
import { isSluiceError } from '../core/errors.js';
import { formatIssue } from '../config/types.js';
import { loadConfigFile } from '../config/load.js';
import type { RouteView, SessionView } from '../admin/views.js';
import type { ConnectRouteView, PeerLinkView } from '../agent/peer-view.js';
import type { AgentStatusView } from '../agent/agent-view.js';
import { certificateFingerprint } from '../gateway/certificate.js';
import { parseArgs } from './args.js';
import { adminFetch } from './admin-fetch.js';
import { EXIT } from './exit-codes.js';
import { httpGet } from './http-get.js';

/**
 * `sluice status [--admin URL] [--token T] [--config FILE] [--json] [--ca FILE | --fingerprint F | --insecure]`: routes and live sessions of
 * a running Sluice, read from its admin API (docs/admin.md) and printed as tables.
 *
 * Where to ask: `--admin`, else `$SLUICE_ADMIN`, else `admin.listen` of `--config FILE`, else
 * http://127.0.0.1:9090. The token: `--token`, else `$SLUICE_ADMIN_TOKEN`, else `admin.token` of
 * `--config FILE`. The environment keeps the token out of `ps` output.
 */
export interface StatusIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Default: a GET over node:http (./http-get.ts). */
  readonly fetch?: (url: URL, init: { headers: Record<string, string>; signal: AbortSignal }) => Promise<Response>;
}

const FLAGS = { admin: 'string', token: 'string', config: 'string', json: 'boolean', ca: 'string', fingerprint: 'string', insecure: 'boolean', help: 'boolean', h: 'boolean' } as const;
const DEFAULT_ADMIN = 'http://127.0.0.1:9090';
const TIMEOUT_MS = 5_000;

export const STATUS_HELP = `Usage: sluice status [--admin URL] [--token TOKEN] [--config FILE] [--json] [--ca FILE | --fingerprint sha256:HEX | --insecure]

Prints the routes, live sessions, peer links and connect listeners of a running Sluice, from its
admin API.
  --admin URL      the admin listener (http://127.0.0.1:9090, or host:port); env SLUICE_ADMIN
  --token TOKEN    the admin token, if one is set; env SLUICE_ADMIN_TOKEN (keeps it out of ps)
  --config FILE    read admin.listen and admin.token from the config file
  --json           print the API's JSON instead of tables
  --ca FILE        https: trust this CA (or self-signed certificate) PEM; the name is checked
  --fingerprint F  https: accept exactly the certificate with this sha256:HEX (the admin
                   listener logs it); --config pins the configured certificate by itself
  --insecure       https: check nothing (the token goes to whoever answers)
Exit codes: 0 ok, 1 the admin API is unreachable or refused the request, 2 bad command line,
3 the config file given with --config is invalid.
`;

export async function runStatusCommand(argv: readonly string[], io: StatusIo): Promise<number> {
  let args;
  try {
    args = parseArgs(argv, FLAGS);
  } catch (err) {
    io.stderr.write(`sluice status: ${(err as Error).message}\n${STATUS_HELP}`);
    return EXIT.usage;
  }
  if (args.flags.has('help') || args.flags.has('h')) {
    io.stdout.write(STATUS_HELP);
    return EXIT.ok;
  }
  if (args.command !== undefined) {
    io.stderr.write(`sluice status: unexpected argument "${args.command}"\n${STATUS_HELP}`);
    return EXIT.usage;
  }
  const flag = (name: string) => {
    const v = args.flags.get(name);
    return typeof v === 'string' ? v : undefined;
  };

  let fromConfig: { url?: string; token?: string; fingerprint?: string } = {};
  const configPath = flag('config');
  if (configPath) {
    const parsed = await loadConfigFile(configPath);
    if (!parsed.ok) {
      io.stderr.write(`sluice status: ${configPath}: ${parsed.issues.length} problem(s)\n`);
      for (const issue of parsed.issues) io.stderr.write(`  ${formatIssue(issue)}\n`);
      return EXIT.configInvalid;
    }
    const admin = parsed.config.admin;
    if (!admin) {
      io.stderr.write(`sluice status: ${configPath} has no admin: section, so there is no admin API to ask\n`);
      return EXIT.usage;
    }
    const host = admin.listen.host === '0.0.0.0' ? '127.0.0.1' : admin.listen.host === '::' ? '::1' : admin.listen.host;
    const pinned = admin.tls ? configuredFingerprint(admin.tls, parsed.config.gateway) : undefined;
    if (typeof pinned === 'object') {
      io.stderr.write(`sluice status: ${pinned.error}\n`);
      return EXIT.usage;
    }
    fromConfig = { url: `${admin.tls ? 'https' : 'http'}://${formatHostPort(host, admin.listen.port)}`, token: admin.token, fingerprint: pinned };
  }

  const env = (name: string) => io.env[name] || undefined; // set but empty counts as unset
  const base = normaliseUrl(flag('admin') ?? env('SLUICE_ADMIN') ?? fromConfig.url ?? DEFAULT_ADMIN);
  if (typeof base === 'string') {
    io.stderr.write(`sluice status: --admin: ${base}\n`);
    return EXIT.usage;
  }
  const token = flag('token') ?? env('SLUICE_ADMIN_TOKEN') ?? fromConfig.token;
  const ca = flag('ca');
  const fingerprint = flag('fingerprint') ?? (ca === undefined ? fromConfig.fingerprint : undefined);
  if (fingerprint !== undefined && !/^sha256:[0-9a-fA-F]{64}$/.test(fingerprint)) {
    io.stderr.write(`sluice status: --fingerprint must be sha256: and 64 hex digits, got "${fingerprint}"\n`);
    return EXIT.usage;
  }
  let doFetch: NonNullable<StatusIo["fetch"]> = io.fetch ?? httpGet;
  if (base.protocol === 'https:' && !io.fetch) {
    try {
      doFetch = adminFetch({ caFile: ca, fingerprint, insecure: args.flags.has('insecure') });
    } catch (err) {
      io.stderr.write(`sluice status: ${(err as Error).message}\n`);
      return EXIT.usage;
    }
  }

  const get = async (path: string, optional = false): Promise<unknown> => {
    let res: Response;
    try {
      res = await doFetch(new URL(path, base), {
        headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      throw new StatusError(`cannot reach the admin API at ${base}: ${reachError(err)} (is \`sluice run\` running with admin.listen set?)`);
    }
    if (res.status === 401) throw new StatusError(`the admin API at ${base} needs a valid token (401): pass --token or set SLUICE_ADMIN_TOKEN`);
    if (res.status === 403) {
      const body = (await res.json().catch(() => ({}))) as { reason?: string };
      throw new StatusError(`the admin API at ${base} refused the request (403 ${body.reason ?? 'forbidden'})`);
    }
    if (optional && res.status === 404) return undefined; // an older Sluice without this endpoint
    if (!res.ok) throw new StatusError(`the admin API at ${base} answered ${res.status} for ${path}`);
    return res.json();
  };

  try {
    const [routes, sessions, health, peers] = (await Promise.all([get('/api/routes'), get('/api/sessions'), get('/api/health'), get('/api/peers', true)])) as [
      { routes: RouteView[] },
      { total: number; truncated: boolean; sessions: SessionView[] },
      StatusHealth,
      StatusPeers | undefined,
    ];
    if (args.flags.has('json')) io.stdout.write(JSON.stringify({ routes: routes.routes, ...sessions, datapath: health.datapath, ...(health.agent ? { agent: health.agent } : {}), ...(peers ? { peers } : {}) }, null, 2) + '\n');
    else io.stdout.write(formatStatus(routes.routes, sessions, health, peers));
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof StatusError)) throw err;
    io.stderr.write(`sluice status: ${err.message}\n`);
    return EXIT.runtime;
  }
}

class StatusError extends Error {}

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

/** What `sluice status` reads of /api/peers (src/agent/peer-view.ts). */
export interface StatusPeers {
  readonly agent: string | null;
  readonly links: readonly PeerLinkView[];
  readonly connect: readonly ConnectRouteView[];
  readonly gateway?: {
    readonly signals: { readonly forwarded: number; readonly refused: Readonly<Record<string, number>> };
    readonly openFlows: Readonly<Record<string, number>>;
    readonly relayedDatagrams: { readonly toService: number; readonly toOpener: number; readonly toOpenerDropped: number };
  } | null;
}

/**
 * Plain-text tables: routes, then live sessions, then (with an agent) peer links and connect
 * listeners, and (on a gateway) its peer counters. Columns are padded to their widest cell.
 */
/** What `sluice status` reads of /api/health. */
export interface StatusHealth {
  readonly datapath?: string;
  readonly agent?: AgentStatusView;
}

export function formatStatus(
  routes: readonly RouteView[],
  page: { total: number; truncated: boolean; sessions: readonly SessionView[] },
  health: StatusHealth = {},
  peers?: StatusPeers,
): string {
  const hp = (a: string | undefined, p: number | undefined) => (a === undefined || p === undefined ? '-' : p === 0 ? a : formatHostPort(a, p));
  // Routes from container labels add an ORIGIN column (container name and short id); published
  // services and connect listeners add KIND (with the agent), STATE and the routes' byte counters.
  const origin = routes.some((r) => r.origin);
  const owned = routes.some((r) => (r.kind ?? 'route') !== 'route');
  const out = [
    table(
      ['ROUTE', 'PROTO', 'LISTEN', 'BOUND', 'UPSTREAM', 'ACTIVE', ...(owned ? ['KIND', 'STATE', 'BYTES_FROM_CLIENT', 'BYTES_TO_CLIENT'] : []), ...(origin ? ['ORIGIN'] : [])],
      routes.map((r) => [
        r.name,
        r.proto,
        r.listen,
        r.address,
        r.upstream,
        String(r.active),
        ...(owned ? [r.kind === 'published' ? `published by ${r.agent ?? '?'}` : (r.kind ?? 'route'), r.state, String(r.bytesFromClient ?? 0), String(r.bytesToClient ?? 0)] : []),
        ...(origin ? [r.origin ? `container ${r.origin.container} (${r.origin.containerId.slice(0, 12)})` : 'config'] : []),
      ]),
    ),
    '',
    `SESSIONS: ${page.total}${page.truncated ? ` (first ${page.sessions.length} shown)` : ''}`,
  ];
  if (page.sessions.length > 0) {
    out.push(
      table(
        ['FLOW', 'ROUTE', 'PROTO', 'CLIENT', 'UPSTREAM', 'STATE', 'AGE', 'BYTES_FROM_CLIENT', 'BYTES_TO_CLIENT', 'PKTS_FROM_CLIENT', 'PKTS_TO_CLIENT'],
        page.sessions.map((s) => [
          String(s.flowId),
          s.route,
          s.proto,
          hp(s.clientAddr, s.clientPort),
          hp(s.upstreamAddr, s.upstreamPort),
          s.state,
          formatAge(s.ageMs),
          String(s.bytesFromClient),
          String(s.bytesToClient),
          String(s.packetsFromClient),
          String(s.packetsToClient),
        ]),
      ),
    );
  }
  if (health.datapath) out.push('', `UDP DATAPATH: ${health.datapath}`);
  if (health.agent) out.push(...formatAgent(health.agent));
  if (peers) out.push(...formatPeers(peers));
  return out.join('\n') + '\n';
}

/** The agent's gateway connection and the services it published (or tried to). */
export function formatAgent(a: AgentStatusView): string[] {
  const last = a.lastError ? ` (last error ${a.lastError.reason} at ${a.lastError.time}: ${a.lastError.message})` : '';
  const line =
    a.state === 'connected'
      ? `connected to gateway ${a.gateway}${a.connectedSince ? ` since ${a.connectedSince}` : ''}, datagrams over ${a.datagrams}`
      : `${a.state}, gateway ${a.gateway}${last}`;
  const out = ['', `AGENT ${a.name}: ${line}`];
  if (a.services.length > 0) {
    out.push(
      table(
        ['SERVICE', 'PROTO', 'LOCAL', 'REMOTE', 'STATE', 'BOUND'],
        a.services.map((s) => [s.name, s.proto, s.local, s.remote ?? '-', s.refusal && s.state === 'refused' ? `refused (${s.refusal.code}: ${s.refusal.message})` : s.state, s.bound ?? '-']),
      ),
    );
  }
  return out;
}

/** The PEERS and CONNECT tables of an agent, and the gateway's peer relay line. */
export function formatPeers(peers: StatusPeers): string[] {
  const out: string[] = [];
  if (peers.agent !== null) {
    out.push('', `PEERS: ${peers.links.length}`);
    if (peers.links.length > 0) {
      out.push(
        table(
          ['PEER', 'ROLE', 'STATE', 'PATH', 'TIME_TO_DIRECT', 'SELECTED', 'REASON'],
          peers.links.map((l) => [
            l.peer,
            l.role,
            l.state,
            l.state === 'idle' || l.state === 'peer-offline' ? '-' : l.path,
            l.timeToDirectMs === null ? '-' : `${l.timeToDirectMs}ms`,
            l.diagnosis.selected ?? '-',
            (l.reason ?? '-') + (l.lastRefusal ? ` (last refusal: ${l.lastRefusal})` : ''),
          ]),
        ),
      );
    }
    if (peers.connect.length > 0) {
      const sum = (c: ConnectRouteView, k: 'direct' | 'relayed' | 'received') => String(c.flows.reduce((n, f) => n + f.counters[k], 0));
      out.push(
        '',
        table(
          ['CONNECT', 'PROTO', 'BOUND', 'PEER', 'SERVICE', 'PATH', 'STATE', 'ACTIVE', 'DIRECT', 'RELAYED', 'RECEIVED'],
          peers.connect.map((c) => [
            c.name,
            c.proto,
            c.address ?? c.listen,
            c.peer,
            c.service,
            c.path,
            c.state === 'connected' && c.linkPath ? `connected (${c.proto === 'tcp' ? 'relayed' : c.linkPath})` : c.state,
            String(c.active),
            sum(c, 'direct'),
            sum(c, 'relayed'),
            sum(c, 'received'),
          ]),
        ),
      );
    }
  }
  const g = peers.gateway;
  if (g) {
    const refused = Object.values(g.signals.refused).reduce((n, v) => n + v, 0);
    const open = Object.entries(g.openFlows).map(([t, n]) => `${t} ${n}`).join(', ');
    out.push(
      '',
      `GATEWAY PEER RELAY: signals forwarded ${g.signals.forwarded}, refused ${refused}; open flows ${open || 'none'}; datagrams to service ${g.relayedDatagrams.toService}, to opener ${g.relayedDatagrams.toOpener} (dropped ${g.relayedDatagrams.toOpenerDropped})`,
    );
  }
  return out;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

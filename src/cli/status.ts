import { formatHostPort } from '../core/address.js';
import type { RouteView, SessionView } from '../admin/views.js';
import type { ConnectRouteView, PeerLinkView } from '../ops/peer-view.js';
import type { AgentStatusView } from '../ops/agent-view.js';
import { parseArgs } from './args.js';
import { ADMIN_FLAGS, ADMIN_FLAGS_HELP, AdminCallError, adminClient, type AdminIo } from './admin-client.js';
import { EXIT } from './exit-codes.js';

/**
 * `sluice status [--admin URL] [--token T] [--config FILE] [--json] [--ca FILE | --fingerprint F | --insecure]`: routes and live sessions of
 * a running Sluice, read from its admin API (docs/admin.md) and printed as tables.
 *
 * Where to ask: `--admin`, else `$SLUICE_ADMIN`, else `admin.listen` of `--config FILE`, else
 * http://127.0.0.1:9090. The token: `--token`, else `$SLUICE_ADMIN_TOKEN`, else `admin.token` of
 * `--config FILE`. The environment keeps the token out of `ps` output.
 */
export type StatusIo = AdminIo;

const FLAGS = { ...ADMIN_FLAGS, json: 'boolean', help: 'boolean', h: 'boolean' } as const;

export const STATUS_HELP = `Usage: sluice status [--admin URL] [--token TOKEN] [--config FILE] [--json] [--ca FILE | --fingerprint sha256:HEX | --insecure]

Prints the routes, live sessions, peer links and connect listeners of a running Sluice, from its
admin API.
${ADMIN_FLAGS_HELP}  --json           print the API's JSON instead of tables
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
  const admin = await adminClient(args.flags, io, 'status');
  if (typeof admin === 'number') return admin;
  const get = async (path: string, optional = false): Promise<unknown> => {
    const r = await admin.call(path, { accept: optional ? [404] : [] });
    return r.status === 404 ? undefined : r.body; // 404 on an optional path: an older Sluice without this endpoint
  };

  try {
    const [routes, sessions, health, peers] = (await Promise.all([get('/api/routes'), get('/api/sessions'), get('/api/health'), get('/api/peers', true)])) as [
      { routes: RouteView[] },
      { total: number; truncated: boolean; sessions: SessionView[] },
      StatusHealth,
      StatusPeers | undefined,
    ];
    if (args.flags.has('json')) io.stdout.write(JSON.stringify({ routes: routes.routes, ...sessions, datapath: health.datapath, streamDatapath: health.streamDatapath, ...(health.agent ? { agent: health.agent } : {}), ...(peers ? { peers } : {}) }, null, 2) + '\n');
    else io.stdout.write(formatStatus(routes.routes, sessions, health, peers));
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof AdminCallError)) throw err;
    io.stderr.write(`sluice status: ${err.message}\n`);
    return EXIT.runtime;
  }
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
  readonly streamDatapath?: string;
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
  out.push(...formatPools(routes));
  if (health.datapath) out.push('', `UDP DATAPATH: ${health.datapath}`);
  if (health.streamDatapath) out.push(`TCP DATAPATH: ${health.streamDatapath}`);
  if (health.agent) out.push(...formatAgent(health.agent));
  if (peers) out.push(...formatPeers(peers));
  return out.join('\n') + '\n';
}

/** Pooled routes' members (docs/pools.md): health, last check, live flows, sessions and bytes. */
export function formatPools(routes: readonly RouteView[]): string[] {
  const pooled = routes.filter((r) => r.pool);
  if (pooled.length === 0) return [];
  return [
    '',
    table(
      ['ROUTE', 'MEMBER', 'WEIGHT', 'HEALTH', 'LAST_CHECK', 'ACTIVE', 'SESSIONS', 'BYTES_FROM_CLIENT', 'BYTES_TO_CLIENT'],
      pooled.flatMap((r) =>
        r.pool!.members.map((m) => [
          r.name,
          m.backup ? `${m.label} (backup)` : m.label,
          String(m.weight),
          m.health,
          m.lastCheck ? `${m.lastCheck.outcome} ${m.lastCheck.latencyMs}ms` : '-',
          String(m.active),
          String(m.sessions),
          String(m.bytesFromClient),
          String(m.bytesToClient),
        ]),
      ),
    ),
    ...pooled.filter((r) => r.pool!.refused > 0).map((r) => `${r.name}: ${r.pool!.refused} refused (no-healthy-upstream)`),
  ];
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

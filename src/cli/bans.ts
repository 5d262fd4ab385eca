import { parseArgs } from './args.js';
import { ADMIN_FLAGS, ADMIN_FLAGS_HELP, AdminCallError, adminClient, type AdminIo } from './admin-client.js';
import { EXIT } from './exit-codes.js';

const FLAGS = { ...ADMIN_FLAGS, duration: 'string', reason: 'string', json: 'boolean', limit: 'string', offset: 'string', source: 'string', help: 'boolean', h: 'boolean' } as const;

export const BANS_HELP = `Usage: sluice bans [list] [--limit N] [--offset N] [--source S] [--json]
       sluice bans add ADDRESS[/PREFIX] --duration 1h [--reason TEXT]
       sluice bans remove ADDRESS[/PREFIX]
       (each with [--admin URL] [--token TOKEN] [--config FILE] [--ca FILE | --fingerprint sha256:HEX | --insecure])

Lists, adds and removes bans on a running Sluice through its admin API (docs/bans.md). Adding
and removing need admin.token to be set on the server. The list holds the ban list's bans
(sources rule:<name> and api) and CrowdSec's ban decisions (source crowdsec), which are removed
with cscli, not here.
  --duration D     add: how long the ban lasts (30m, 1h, 7d)
  --reason TEXT    add: why, kept with the ban and shown in its refusals
  --json           list: print the API's JSON instead of a table
  --limit N        list: at most N bans (default 100, at most 1000)
  --offset N       list: skip the first N bans (the next page)
  --source S       list: only bans from S (crowdsec, api, rule:NAME)
${ADMIN_FLAGS_HELP}Exit codes: 0 ok, 1 the admin API is unreachable or refused the request (or remove: no such
ban, or the ban is CrowdSec's decision), 2 bad command line, 3 the config file given with --config is invalid.
`;

interface BanView {
  readonly target: string;
  readonly source: string;
  readonly reason: string;
  /** null: a CrowdSec decision without a duration (until CrowdSec deletes it). */
  readonly expiresAt: string | null;
}

interface BanPage {
  readonly bans: BanView[];
  readonly total: number;
  readonly offset: number;
}

/** `sluice bans [list|add|remove]`: the ban list of a running Sluice (GET/POST/DELETE /api/bans). */
export async function runBansCommand(argv: readonly string[], io: AdminIo): Promise<number> {
  const usage = (message: string) => {
    io.stderr.write(`sluice bans: ${message}\n${BANS_HELP}`);
    return EXIT.usage;
  };
  let args;
  try {
    args = parseArgs(argv, FLAGS);
  } catch (err) {
    return usage((err as Error).message);
  }
  if (args.flags.has('help') || args.flags.has('h')) {
    io.stdout.write(BANS_HELP);
    return EXIT.ok;
  }
  const action = args.command ?? 'list';
  const target = args.positional[0];
  const flag = (name: string) => {
    const v = args.flags.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  if (!['list', 'add', 'remove'].includes(action)) return usage(`unknown action "${action}" (list, add or remove)`);
  if (action === 'list' && target !== undefined) return usage(`list takes no address, got "${target}"`);
  if (action !== 'list' && target === undefined) return usage(`${action} needs an address such as 203.0.113.7 or 2001:db8::/64`);
  if (args.positional.length > 1) return usage(`unexpected argument "${args.positional[1]}"`);
  if (action === 'add' && flag('duration') === undefined) return usage('add needs --duration (such as 1h)');
  const query = new URLSearchParams();
  for (const name of ['limit', 'offset', 'source'] as const) {
    const v = flag(name);
    if (v === undefined) continue;
    if (action !== 'list') return usage(`--${name} is for list`);
    if (name !== 'source' && !/^\d{1,9}$/.test(v)) return usage(`--${name} must be a whole number, got "${v}"`);
    query.set(name, v);
  }
  const admin = await adminClient(args.flags, io, 'bans');
  if (typeof admin === 'number') return admin;
  try {
    if (action === 'add') {
      const r = await admin.call('/api/bans', { method: 'POST', body: { address: target, duration: flag('duration'), ...(flag('reason') ? { reason: flag('reason') } : {}) } });
      const ban = (r.body as { ban: BanView }).ban;
      io.stdout.write(`banned ${ban.target} until ${ban.expiresAt}\n`);
    } else if (action === 'remove') {
      const r = await admin.call(`/api/bans?address=${encodeURIComponent(target!)}`, { method: 'DELETE', accept: [404, 409] });
      if (r.status === 404) {
        io.stderr.write(`sluice bans: no ban on ${target}\n`);
        return EXIT.runtime;
      }
      if (r.status === 409) {
        // CrowdSec's decision: the server's message names the cscli command that lifts it.
        io.stderr.write(`sluice bans: ${(r.body as { error: string }).error.replace(/^address: /, '')}\n`);
        return EXIT.runtime;
      }
      io.stdout.write(`removed the ban on ${(r.body as { removed: BanView }).removed.target}\n`);
    } else {
      const qs = query.toString();
      const r = await admin.call(`/api/bans${qs ? `?${qs}` : ''}`);
      if (args.flags.has('json')) io.stdout.write(`${JSON.stringify(r.body, null, 2)}\n`);
      else io.stdout.write(formatBans(r.body as BanPage));
    }
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof AdminCallError)) throw err;
    io.stderr.write(`sluice bans: ${err.message}\n`);
    return EXIT.runtime;
  }
}

/**
 * A table of one page of bans, columns padded to their widest cell, and a last line saying which
 * part of the list it is when the list holds more (`bans 1-100 of 1000; next: --offset 100`).
 */
export function formatBans(page: BanPage): string {
  const { bans, total, offset } = page;
  if (bans.length === 0) return total > 0 ? `no bans from ${offset + 1} (the list holds ${total})\n` : 'no bans\n';
  const rows = [['TARGET', 'SOURCE', 'EXPIRES', 'REASON'], ...bans.map((b) => [b.target, b.source, b.expiresAt ?? 'when deleted', b.reason])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
  const end = offset + bans.length;
  return total > bans.length ? `${table}bans ${offset + 1}-${end} of ${total}${end < total ? `; next: --offset ${end}` : ''}\n` : table;
}

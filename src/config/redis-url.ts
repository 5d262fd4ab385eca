import type { FleetRedisTarget } from './fleet-settings.js';

const SCHEMES: Record<string, { tls: boolean; sentinel: boolean }> = {
  'redis:': { tls: false, sentinel: false },
  'rediss:': { tls: true, sentinel: false },
  'redis+sentinel:': { tls: false, sentinel: true },
  'rediss+sentinel:': { tls: true, sentinel: true },
};

const FORMS = 'redis://[user:password@]host[:port][/db], rediss://... for TLS, or redis+sentinel://[user:password@]host:port[,host:port...]/master[/db]';

/**
 * The `gateway.fleet.redis` text -> where Redis is, or a message naming what is wrong.
 * - `redis://[user:password@]host[:port][/db]` (port 6379, db 0 by default); `rediss://` is TLS.
 * - `redis+sentinel://[user:password@]s1:26379,s2:26379/master[/db]`: ask these Sentinels for the
 *   master named `master` (port 26379 by default); `rediss+sentinel://` speaks TLS to the master.
 * Credentials authenticate to Redis (ACL user or `requirepass`); Sentinels are asked without them.
 */
export function parseRedisUrl(text: string): FleetRedisTarget | string {
  const m = /^([a-z+]+:)\/\/(?:([^@/]*)@)?([^/?#]+)(\/[^?#]*)?$/i.exec(text.trim());
  if (!m) return `expected ${FORMS}; got "${text}"`;
  const scheme = SCHEMES[m[1]!.toLowerCase()];
  if (!scheme) return `unknown scheme ${m[1]}// (expected redis://, rediss://, redis+sentinel:// or rediss+sentinel://)`;
  const hosts: { host: string; port: number }[] = [];
  for (const part of m[3]!.split(',')) {
    const h = hostPort(part, scheme.sentinel ? 26379 : 6379);
    if (typeof h === 'string') return h;
    hosts.push(h);
  }
  if (!scheme.sentinel && hosts.length > 1) return 'several hosts need redis+sentinel:// (a plain URL names one server)';
  const path = (m[4] ?? '').split('/').filter((p) => p !== '');
  let master: string | undefined;
  if (scheme.sentinel) {
    master = path.shift();
    if (master === undefined) return 'redis+sentinel:// needs the master name after the hosts: redis+sentinel://host:26379/mymaster';
  }
  if (path.length > 1) return `unexpected path "${m[4]}": after the host comes ${scheme.sentinel ? '/master and an optional /db' : 'an optional /db'}`;
  const db = path.length === 0 ? 0 : Number(path[0]);
  if (!Number.isInteger(db) || db < 0 || db > 65535) return `database "${path[0]}" is not a number 0-65535`;
  let username: string | undefined;
  let password: string | undefined;
  if (m[2] !== undefined && m[2] !== '') {
    const colon = m[2].indexOf(':');
    const user = decodeURIComponent(colon < 0 ? m[2] : m[2].slice(0, colon));
    password = colon < 0 ? undefined : decodeURIComponent(m[2].slice(colon + 1));
    if (user !== '') username = user;
    if (password === '') password = undefined;
  }
  const shown = m[2] !== undefined && password !== undefined ? text.trim().replace(`${m[2]}@`, `${username ?? ''}:***@`) : text.trim();
  return {
    shown,
    hosts,
    ...(master !== undefined ? { sentinelMaster: decodeURIComponent(master) } : {}),
    db,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(scheme.tls ? { tls: {} } : {}),
  };
}

function hostPort(text: string, defaultPort: number): { host: string; port: number } | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(text);
  if (!m) return `"${text}" is not host[:port] (IPv6 in brackets: [2001:db8::1]:6379)`;
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port < 1 || port > 65535) return `port ${m[3]} is not within 1-65535`;
  return { host: m[1] ?? m[2]!, port };
}

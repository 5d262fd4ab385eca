import { execFileSync } from 'node:child_process';

/**
 * The congestion control of each established TCP socket with `port` at either end, as `ss -ti`
 * shows it: "local-port>peer-port" -> the algorithm (one of `names`, '?' when none shows).
 */
export function congestionOfSockets(port: number, names: readonly string[]): Map<string, string> {
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} or dport = :${port} )`], { encoding: 'utf8' });
  const found = new Map<string, string>();
  const portOf = (a: string) => a.slice(a.lastIndexOf(':') + 1);
  let ends: string | undefined;
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    if (!/^\s/.test(line)) {
      // Recv-Q Send-Q Local:Port Peer:Port (state is filtered, so not shown)
      const f = line.trim().split(/\s+/);
      ends = `${portOf(f[2]!)}>${portOf(f[3]!)}`;
    } else if (ends !== undefined) {
      found.set(ends, line.trim().split(/\s+/).find((w) => names.includes(w)) ?? '?');
      ends = undefined;
    }
  }
  return found;
}

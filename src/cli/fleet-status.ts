import type { FleetHealth, FleetView } from '../fleet/fleet.js';

/** The FLEET line of `sluice status` (from /api/health). */
export function fleetLine(f: FleetHealth): string {
  return `FLEET: ${f.name} ${f.status}, ${f.gateways} gateway(s), Redis ${f.redis}${f.error ? ` (${f.error}; fleet limits: ${f.onRedisDown})` : ''}${f.nameConflict ? `, another process also registers as ${f.name}` : ''}`;
}

/**
 * `sluice status --fleet` as text (docs/cli.md): the gateways of the fleet (alive, load, agents)
 * and every agent with the gateways holding it, as /api/fleet on the asked gateway sees them.
 */
export function formatFleet(v: FleetView): string {
  const lines: string[] = [];
  lines.push(`fleet seen from ${v.name}: Redis ${v.redis} ${v.status}${v.asOf ? `, view as of ${v.asOf}` : ''}`);
  lines.push('');
  lines.push(table(['GATEWAY', 'ALIVE', 'AGENTS', 'SESSIONS', 'ADDRESSES', 'AGENT PORT', 'VERSION'], v.gateways.map((g) => [
    g.self ? `${g.name} (this)` : g.name,
    g.alive ? 'yes' : 'unknown',
    String(g.load.agents),
    String(g.load.sessions),
    g.addresses.join(','),
    String(g.agentPort),
    g.version,
  ])));
  lines.push('');
  if (v.agents === null) lines.push('agents: unknown while Redis is unreachable');
  else if (v.agents.length === 0) lines.push('agents: none');
  else lines.push(table(['AGENT', 'GATEWAYS'], v.agents.map((a) => [a.name, a.gateways.join(',')])));
  const l = v.limits;
  const parts = [l.maxPerSource > 0 ? `cap ${l.maxPerSource} per source` : '', l.ratePerSource > 0 ? `${l.ratePerSource} new per ${l.rateWindowMs} ms per source` : ''].filter((p) => p !== '');
  lines.push('');
  lines.push(`fleet limits: ${parts.length > 0 ? parts.join(', ') : 'none'} (onRedisDown: ${l.onRedisDown}); refused: rate ${l.rateRefused}, cap ${l.capRefused}, Redis down ${l.unavailableRefused}`);
  return lines.join('\n') + '\n';
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

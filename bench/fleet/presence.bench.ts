// Fleet presence at scale: node dist/bench/fleet/presence.bench.js
// AGENTS simulated agents (default 2000) join GATEWAYS in-process gateways (default 1) of one fleet
// within about a second, then heartbeat for DUR seconds (default 10) at HEARTBEAT ms (default 2000).
// Starts its own redis-server (Debian package redis-server) on a free loopback port. Reports, per
// phase, Redis commands per second per agent (INFO stats total_commands_processed, our own INFO
// calls subtracted) and the gateways' CPU per agent (process.cpuUsage of this process, which runs
// only the gateways' fleet parts). One line per phase, key=value.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/core/clock.js';
import { EventStream } from '../../src/observe/events.js';
import { parseRedisUrl } from '../../src/config/redis-url.js';
import { Fleet } from '../../src/fleet/fleet.js';
import type { FleetRedisTarget } from '../../src/config/fleet-settings.js';

const AGENTS = Number(process.env.AGENTS ?? 2000);
const GATEWAYS = Number(process.env.GATEWAYS ?? 1);
const DUR_S = Number(process.env.DUR ?? 10);
const HEARTBEAT_MS = Number(process.env.HEARTBEAT ?? 2000);

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** One command over a fresh connection; the raw reply. */
function command(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('error', reject);
    s.on('close', () => resolve(out));
    const enc = (a: string[]) => `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`;
    s.write(enc(args) + enc(['QUIT']));
  });
}

/** total_commands_processed, minus the INFO and QUIT of this very reading (2 commands). */
async function commandsProcessed(port: number): Promise<number> {
  const m = /total_commands_processed:(\d+)/.exec(await command(port, 'INFO', 'stats'));
  return Number(m?.[1] ?? NaN);
}

async function main(): Promise<void> {
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  redis.stdout!.on('data', (d) => (out += d));
  const until = Date.now() + 10_000;
  while (!out.includes('Ready to accept connections')) {
    if (Date.now() > until || redis.exitCode !== null) throw new Error(`redis-server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const target = parseRedisUrl(`redis://127.0.0.1:${port}/0`) as FleetRedisTarget;
  const ac = new AbortController();
  const gateways = [] as { fleet: Fleet; agents: Set<string>; events: EventStream }[];
  try {
    for (let g = 0; g < GATEWAYS; g++) {
      const agents = new Set<string>();
      const events = new EventStream((err) => {
        throw err;
      });
      const fleet = await Fleet.start(
        { name: `gw-${g}`, redis: target, keyPrefix: 'sluice:', heartbeatMs: HEARTBEAT_MS, ttlMs: HEARTBEAT_MS * 5, onRedisDown: 'local', publicAddresses: [`127.0.0.1:${7000 + g}`], limits: { maxPerSource: 0, ratePerSource: 0, rateWindowMs: 1000 } },
        { clock: systemClock, events, version: 'bench', local: { agents: () => agents, load: () => ({ agents: agents.size, sessions: 0 }), agentPort: () => 7000 + g }, warn: () => {} },
        ac.signal,
      );
      gateways.push({ fleet, agents, events });
    }
    const phase = async (name: string, work: () => Promise<void>) => {
      const c0 = await commandsProcessed(port);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await work();
      const elapsed = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const ops = (await commandsProcessed(port)) - c0 - 2;
      const cpuMs = (cpu.user + cpu.system) / 1000;
      console.log(
        `bench=fleet-presence phase=${name} agents=${AGENTS} gateways=${GATEWAYS} heartbeat_ms=${HEARTBEAT_MS} seconds=${elapsed.toFixed(1)} redis_ops=${ops} ` +
          `redis_ops_per_s=${(ops / elapsed).toFixed(0)} redis_ops_per_s_per_agent=${(ops / elapsed / AGENTS).toFixed(3)} ` +
          `gateway_cpu_ms=${cpuMs.toFixed(0)} gateway_cpu_pct=${((cpuMs / 10 / elapsed)).toFixed(2)} gateway_cpu_us_per_s_per_agent=${((cpuMs * 1000) / elapsed / AGENTS).toFixed(2)}`,
      );
    };
    // Join: agents attach in batches of 50 every 25 ms, each announced by its gateway's agent-up event (written at once).
    await phase('join', async () => {
      for (let i = 0; i < AGENTS; i++) {
        const g = gateways[i % GATEWAYS]!;
        g.agents.add(`agent-${i}`);
        g.events.emit({ type: 'gateway-agent-up', at: Date.now(), agent: `agent-${i}`, remote: { address: '127.0.0.1', port: 1, family: 4 }, resumed: false, keyId: 1 });
        if (i % 50 === 49) await new Promise((r) => setTimeout(r, 25));
      }
      await Promise.all(gateways.map((g) => g.fleet.membership.beat()));
    });
    const seen = await gateways[0]!.fleet.membership.agents();
    if (seen.length !== AGENTS) throw new Error(`expected ${AGENTS} agents in the fleet view, saw ${seen.length}`);
    await phase('steady', () => new Promise((r) => setTimeout(r, DUR_S * 1000)));
    const t0 = performance.now();
    await gateways[0]!.fleet.membership.agents();
    console.log(`bench=fleet-presence phase=view agents=${AGENTS} full_agent_view_ms=${(performance.now() - t0).toFixed(1)}`);
  } finally {
    for (const g of gateways) await g.fleet.close();
    ac.abort();
    redis.kill('SIGKILL');
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

// How approximate fleet-wide limits are under bursts: node dist/bench/fleet/burst.bench.js
// Two in-process gateways, one redis-server (Debian redis-server) on a free loopback port. One source
// opens N=40 sessions alternating gateways, one every GAP ms (0, 0.5, 1, 5); a session counts for
// the cap as soon as it is admitted (no dial time). Reports how many were admitted against a fleet
// cap of 10 and, separately, a fleet rate of 10 per minute. One line per case, key=value.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/core/clock.js';
import { EventStream } from '../../src/observe/events.js';
import { parseRedisUrl } from '../../src/config/redis-url.js';
import { Fleet } from '../../src/fleet/fleet.js';
import type { FleetLimitSettings, FleetRedisTarget } from '../../src/config/fleet-settings.js';

const N = 40;
const LIMIT = 10;

async function main(): Promise<void> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  redis.stdout!.on('data', (d) => (out += d));
  while (!out.includes('Ready to accept connections')) await new Promise((r) => setTimeout(r, 5));
  const target = parseRedisUrl(`redis://127.0.0.1:${port}/0`) as FleetRedisTarget;
  let flowId = 0;
  let round = 0;
  try {
    for (const kind of ['cap', 'rate'] as const) {
      for (const gap of [0, 0.5, 1, 5]) {
        round++;
        const limits: FleetLimitSettings = kind === 'cap' ? { maxPerSource: LIMIT, ratePerSource: 0, rateWindowMs: 1000 } : { maxPerSource: 0, ratePerSource: LIMIT, rateWindowMs: 60_000 };
        const ac = new AbortController();
        const fleets: Fleet[] = [];
        for (const name of ['gw-a', 'gw-b']) {
          fleets.push(
            await Fleet.start(
              { name, redis: target, keyPrefix: `burst${round}:`, heartbeatMs: 2000, ttlMs: 10_000, onRedisDown: 'local', publicAddresses: [], limits },
              { clock: systemClock, events: new EventStream(() => {}), version: 'bench', local: { agents: () => [], load: () => ({ agents: 0, sessions: 0 }), agentPort: () => 0 }, warn: () => {} },
              ac.signal,
            ),
          );
        }
        await Promise.all(fleets.map((f) => f.membership.beat()));
        const client = { address: '203.0.113.9', port: 0, family: 4 as const };
        let admitted = 0;
        for (let i = 0; i < N; i++) {
          const f = fleets[i % 2]!;
          if (f.admitter(client, 'bench') === undefined) {
            admitted++;
            f.limits.started(++flowId, client);
          }
          if (gap > 0) await new Promise((r) => setTimeout(r, gap));
        }
        console.log(`bench=fleet-burst limit=${kind} fleet_limit=${LIMIT} attempts=${N} gap_ms=${gap} admitted=${admitted} over_by=${admitted - LIMIT}`);
        for (const f of fleets) await f.close();
        ac.abort();
      }
    }
  } finally {
    redis.kill('SIGKILL');
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

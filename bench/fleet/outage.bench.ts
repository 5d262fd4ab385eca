// What fleet failures cost, measured: node dist/bench/fleet/outage.bench.js
// Two in-process gateways and their own redis-server (Debian redis-server) on a free loopback port:
// ban propagation latency (median and worst of ROUNDS bans, default 50), then Redis killed (time until
// both links are degraded) and restarted empty (time until both are ok again and both see each
// other again). Heartbeat 2 s, TTL 10 s (the defaults). One line per measure, key=value.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/core/clock.js';
import { EventStream } from '../../src/observe/events.js';
import { parseRedisUrl } from '../../src/config/redis-url.js';
import { BanStore } from '../../src/admission/bans/ban-store.js';
import { Fleet } from '../../src/fleet/fleet.js';
import type { FleetRedisTarget } from '../../src/config/fleet-settings.js';

const ROUNDS = Number(process.env.ROUNDS ?? 50);

async function startRedis(port: number): Promise<ChildProcess> {
  const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  c.stdout!.on('data', (d) => (out += d));
  const until = Date.now() + 10_000;
  while (!out.includes('Ready to accept connections')) {
    if (Date.now() > until || c.exitCode !== null) throw new Error(`redis-server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return c;
}

async function until(cond: () => boolean, limitMs = 30_000): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > limitMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  let redis = await startRedis(port);
  const target = parseRedisUrl(`redis://127.0.0.1:${port}/0`) as FleetRedisTarget;
  const ac = new AbortController();
  const members: { fleet: Fleet; store: BanStore }[] = [];
  try {
    for (const name of ['gw-a', 'gw-b']) {
      const store = new BanStore(systemClock);
      const fleet = await Fleet.start(
        { name, redis: target, keyPrefix: 'sluice:', heartbeatMs: 2000, ttlMs: 10_000, onRedisDown: 'local', publicAddresses: ['127.0.0.1:7000'], limits: { maxPerSource: 0, ratePerSource: 0, rateWindowMs: 1000 } },
        { clock: systemClock, events: new EventStream(() => {}), version: 'bench', local: { agents: () => [], load: () => ({ agents: 0, sessions: 0 }), agentPort: () => 7000 }, bans: store, warn: () => {} },
        ac.signal,
      );
      members.push({ fleet, store });
    }
    const [a, b] = members as [(typeof members)[0], (typeof members)[0]];
    const lat: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const target = `198.51.100.${i % 250}`;
      const t0 = performance.now();
      a.store.add({ target, source: 'api', reason: 'bench', durationMs: 60_000 });
      await until(() => b.store.get(target) !== undefined);
      lat.push(performance.now() - t0);
      a.store.remove(target);
      await until(() => b.store.get(target) === undefined);
    }
    lat.sort((x, y) => x - y);
    console.log(`bench=fleet-outage measure=ban_propagation rounds=${ROUNDS} median_ms=${lat[Math.floor(lat.length / 2)]!.toFixed(2)} worst_ms=${lat.at(-1)!.toFixed(2)}`);

    await Promise.all([a.fleet.membership.beat(), b.fleet.membership.beat()]);
    const killedAt = performance.now();
    redis.kill('SIGKILL');
    await until(() => a.fleet.link.status === 'degraded' && b.fleet.link.status === 'degraded');
    console.log(`bench=fleet-outage measure=redis_killed_to_degraded ms=${(performance.now() - killedAt).toFixed(1)}`);
    await new Promise((r) => setTimeout(r, 5000));
    redis = await startRedis(port);
    const back = performance.now();
    await until(() => a.fleet.link.status === 'ok' && b.fleet.link.status === 'ok');
    console.log(`bench=fleet-outage measure=redis_back_to_ok down_s=5 ms=${(performance.now() - back).toFixed(1)}`);
    const wall = Date.now();
    await until(() => [a, b].every((m) => m.fleet.membership.viewAt >= wall && m.fleet.membership.view.length === 2));
    console.log(`bench=fleet-outage measure=redis_back_to_view_reconverged ms=${(performance.now() - back).toFixed(1)}`);
  } finally {
    for (const m of members) await m.fleet.close();
    ac.abort();
    redis.kill('SIGKILL');
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

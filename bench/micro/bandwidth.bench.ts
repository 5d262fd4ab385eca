// Cost of bandwidth limits on the UDP per-datagram path: node dist/bench/micro/bandwidth.bench.js
// The reply-budget bench's session table (1,000 open sessions, a 96-byte datagram in and a
// 1,452-byte reply out per round, sockets left out) with the reply budget off, in three variants:
// no `bandwidth` (what every route without limits runs), and limits per source and per route in
// both directions that are never reached (four buckets checked per datagram), and per source only.
// Interleaved rounds, medians; one key=value line per variant, then the costs.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run, table } from './reply-budget.bench.js';

export async function main(): Promise<void> {
  const variants = {
    none: await table(', replyBudget: off'),
    'per-source': await table(', replyBudget: off', '    bandwidth: { perSource: 100Gbit/s, burst: 1GB }\n'),
    'source-and-route': await table(', replyBudget: off', '    bandwidth: { perSource: 100Gbit/s, perRoute: 1000Gbit/s, burst: 1GB }\n'),
  };
  const ms = Number(process.env.BENCH_MS ?? 300);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
  const names = Object.keys(variants) as (keyof typeof variants)[];
  const ns = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<keyof typeof variants, number[]>;
  for (const n of names) run(variants[n], 200); // warm up
  for (let i = 0; i < rounds; i++) {
    // Rotate the order, so no variant always runs on a warmer cache.
    for (let k = 0; k < names.length; k++) {
      const n = names[(i + k) % names.length]!;
      ns[n].push(run(variants[n], ms));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = median(ns.none);
  for (const n of names) {
    const v = median(ns[n]);
    console.log(`bench=bandwidth variant=${n} ns_per_datagram=${v.toFixed(1)} cost_pct=${(((v - base) / base) * 100).toFixed(1)} sessions=1000`);
  }
  for (const n of names) variants[n].t.close('shutdown');
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

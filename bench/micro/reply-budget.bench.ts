// Cost of the reply budget on the UDP per-datagram path: node dist/bench/micro/reply-budget.bench.js
// A UdpSessionTable with 1,000 open sessions is driven in both directions (client datagram in,
// upstream reply out), with the route's budget on (the default) and off, interleaved runs; the
// sockets are left out so the difference is what the budget adds per datagram. One key=value
// line per variant, then the difference.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import type { RouteConfig } from '../../src/config/types.js';
import { systemClock } from '../../src/core/clock.js';
import { EventStream } from '../../src/observe/events.js';
import { UdpSessionTable } from '../../src/session/udp-session-table.js';
import { udpPolicyOf } from '../../src/session/session-policy.js';
import type { UdpSession } from '../../src/session/udp-session.js';
import type { DatagramChannel, DatagramDialer } from '../../src/upstream/dialer.js';

const SESSIONS = 1000;

/** `budget`: more `udp:` keys; `extra`: more route keys as a YAML line (bench/micro/bandwidth.bench.ts). */
function route(budget: string, extra = ''): RouteConfig {
  const r = parseConfig(`routes:\n  r:\n    listen: udp://127.0.0.1:0\n    upstream: 127.0.0.1:9\n    udp: { maxSessions: 0, maxSessionsPerSource: 0, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 }${budget} }\n${extra}`);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config.routes[0]!;
}

export async function table(budget: string, extra = '') {
  let sent = 0;
  const channel: DatagramChannel = { remote: { address: '127.0.0.1', port: 9, family: 4 }, send: () => void sent++, close: () => {} };
  const dialer: DatagramDialer = { open: async () => channel };
  const t = new UdpSessionTable(udpPolicyOf(route(budget, extra)), {
    clock: systemClock,
    dialer,
    events: new EventStream(),
    nextFlowId: (() => {
      let n = 0;
      return () => ++n;
    })(),
  }, {
    send: () => void sent++,
    local: () => ({ address: '127.0.0.1', port: 1, family: 4 }),
  });
  const base = (10 << 24) >>> 0;
  const request = Buffer.alloc(96);
  for (let i = 0; i < SESSIONS; i++) t.onDatagramV4(request, base + i, 40_000);
  await new Promise((r) => setTimeout(r, 10)); // the channels open
  const sessions = [...t.sessions()] as UdpSession[];
  return { t, sessions, base, sent: () => sent };
}

export type Bench = Awaited<ReturnType<typeof table>>;

/** ns per datagram, both directions: each round one 96-byte request in and one 1,452-byte reply out per session. */
export function run(b: Bench, ms: number): number {
  const request = Buffer.alloc(96);
  const reply = Buffer.alloc(1452);
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let r = 0; r < 20; r++) {
      for (let i = 0; i < SESSIONS; i++) {
        b.t.onDatagramV4(request, b.base + i, 40_000);
        b.sessions[i]!.onUpstreamDatagram(reply);
      }
    }
    n += 40 * SESSIONS;
    now = performance.now();
  }
  return ((now - start) * 1e6) / n;
}

export async function main(): Promise<void> {
  const on = await table('');
  const off = await table(', replyBudget: off');
  const ms = Number(process.env.BENCH_MS ?? 300);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
  run(on, 200); // warm up both
  run(off, 200);
  const onNs: number[] = [];
  const offNs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate which variant goes first, so neither always runs on a warmer cache.
    if (i % 2 === 0) {
      onNs.push(run(on, ms));
      offNs.push(run(off, ms));
    } else {
      offNs.push(run(off, ms));
      onNs.push(run(on, ms));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const a = median(onNs);
  const b = median(offNs);
  console.log(`bench=reply-budget variant=on ns_per_datagram=${a.toFixed(1)} sessions=${SESSIONS}`);
  console.log(`bench=reply-budget variant=off ns_per_datagram=${b.toFixed(1)} sessions=${SESSIONS}`);
  console.log(`bench=reply-budget cost_ns_per_datagram=${(a - b).toFixed(1)} cost_pct=${(((a - b) / b) * 100).toFixed(1)}`);
  on.t.close('shutdown');
  off.t.close('shutdown');
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

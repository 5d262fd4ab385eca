// Cost of the tunnel's send budget per datagram: node dist/bench/micro/fair-share.bench.js
// FairShare.admit alone, with 1,000 sessions and one flooder sending every other datagram, at a
// budget that binds (most of the flooder's datagrams are dropped) and one that does not; the
// heap is read before and after to show nothing is kept per datagram. One key=value line per run.
import { ADMIT, FairShare, FairSlot } from '../../src/core/fair-share.js';

const N = 10_000_000;
const SESSIONS = 1000;

function run(perSecond: number): string {
  const f = new FairShare({ perSecond });
  const slots = Array.from({ length: SESSIONS }, () => new FairSlot());
  let now = 0;
  let admitted = 0;
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    // Every other datagram is the flooder's (slot 0); 2 million datagrams per simulated second.
    if (f.admit(slots[(i & 1) === 1 ? 0 : (i >> 1) % SESSIONS]!, now) === ADMIT) admitted++;
    now += 0.0005;
  }
  const ns = Number(process.hrtime.bigint() - t0) / N;
  const heap = (process.memoryUsage().heapUsed - heap0) / 1024;
  return `perSecond=${perSecond} ns_per_admit=${ns.toFixed(1)} admitted=${admitted} session_share_drops=${f.droppedShare} agent_budget_drops=${f.droppedBudget} heap_delta_kib=${heap.toFixed(0)}`;
}

for (let round = 0; round < 2; round++) {
  console.log(run(100_000));
  console.log(run(10_000_000));
}

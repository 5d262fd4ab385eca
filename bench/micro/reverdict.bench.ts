// Re-judging live sessions after a verdict change: node dist/bench/micro/reverdict.bench.js
// One scenario per line, key=value. No sockets: the pass itself (admitter over every live session).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { aclAdmitter } from '../../src/admission/acl-admitter.js';
import { rejudge, type JudgedFlow } from '../../src/admission/reverdict.js';
import { formatIpv4 } from '../../src/core/ip-value.js';

/** `n` live sessions from distinct pseudo-random IPv4 clients; every 1000th in 10.0.0.0/8 (refused by the rule below). */
function sessions(n: number): JudgedFlow[] {
  let x = 11;
  const out: JudgedFlow[] = [];
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 22695477) + 1) >>> 0;
    const address = i % 1000 === 0 ? `10.0.${(i >>> 8) & 255}.${i & 255}` : formatIpv4(((x >>> 1) | 0x40000000) >>> 0);
    out.push({ client: { address, port: 1024 + (i % 60000), family: 4 }, wouldEndNoted: false });
  }
  return out;
}

function run(count: number, rounds = 5): void {
  const admit = aclAdmitter({ deny: ['10.0.0.0/8', '203.0.113.0/24', '198.51.100.0/24'] }, undefined)!;
  const flows = sessions(count);
  let best = Infinity;
  let ended = 0;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    ended = rejudge(flows, admit, 'bench', () => {}, () => {}).ended;
    best = Math.min(best, performance.now() - start);
  }
  console.log(`bench=reverdict sessions=${count} ended=${ended} best_pass_ms=${best.toFixed(2)} ns_per_session=${((best * 1e6) / count).toFixed(0)}`);
}

export function main(): void {
  for (const n of [1000, 10_000, 100_000]) run(n);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) main();

// Per-core ratios of `subject` (and `subject2`) to nginx and HAProxy from one run of run-peers.sh.
// Usage: node ratios.mjs OUTPUT_OF_RUN_PEERS   (finds "raw results: FILE" in it)
import { readFileSync } from 'node:fs';

const out = readFileSync(process.argv[2], 'utf8');
const file = /raw results: (\S+)/.exec(out)?.[1];
if (!file) {
  console.error('ratios: no "raw results:" line in the benchmark output');
  process.exit(1);
}
const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split('\t'));
const by = new Map(); // relay|test|metric -> Map(round -> value)
for (const [relay, round, test, metric, value] of rows) {
  const k = `${relay}|${test}|${metric}`;
  if (!by.has(k)) by.set(k, new Map());
  by.get(k).set(round, Number(value));
}
const med = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
/** Work per relay CPU-second in each round. */
const perCore = (relay, test, metric) => {
  const a = by.get(`${relay}|${test}|${metric}`);
  const c = by.get(`${relay}|${test}|relay_cpu_pct`);
  const r = new Map();
  if (!a || !c) return r;
  for (const [round, v] of a) if (c.has(round) && c.get(round) >= 10) r.set(round, v / (c.get(round) / 100));
  return r;
};
const ratio = (s, p, test, metric) => {
  const a = perCore(s, test, metric);
  const b = perCore(p, test, metric);
  return med([...a].filter(([round]) => b.has(round)).map(([round, v]) => v / b.get(round)));
};
const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const tests = [
  ['UDP 64 B', 'u64', 'delivered_pps', 0.5],
  ['UDP 1400 B', 'u1400', 'delivered_pps', 0.45],
  ['UDP 64 B 1000 sessions', 'u64m', 'delivered_pps', 0.55],
  ['UDP closed loop w=64', 'u64w', 'delivered_pps', undefined],
  ['TCP 1 stream', 't1', 'gbps', 0.8],
  ['TCP 8 streams', 't8', 'gbps', 0.8],
  ['TCP conn/s', 'cps', 'conns_per_s', 0.8],
];
const subjects = ['subject', 'subject2'].filter((s) => [...by.keys()].some((k) => k.startsWith(`${s}|`)));
console.log('### Sluice per core, as a share of the peers (median over rounds of per-round ratios)\n');
console.log(`| metric | ${subjects.flatMap((s) => [`${s} / nginx`, `${s} / haproxy`]).join(' | ')} | target vs nginx |`);
console.log(`|---|${subjects.map(() => '---|---|').join('')}---|`);
for (const [name, test, metric, target] of tests) {
  const cells = subjects.flatMap((s) => [f(ratio(s, 'nginx', test, metric)), test.startsWith('t') || test === 'cps' ? f(ratio(s, 'haproxy', test, metric)) : '–']);
  console.log(`| ${name} | ${cells.join(' | ')} | ${target === undefined ? '–' : `>= ${target}`} |`);
}
if (subjects.length === 2) {
  console.log('\n| metric | subject2 / subject |');
  console.log('|---|---|');
  for (const [name, test, metric] of tests) console.log(`| ${name} | ${f(ratio('subject2', 'subject', test, metric))} |`);
  // Not per core: what the generator got back at the same offered load, the relay CPU it took, and
  // the RTT at a fixed 2k pps (a subject of several processes, e.g. subject-connect.sh, shows here
  // what per-core figures fold together).
  const plain = (s, test, metric) => by.get(`${s}|${test}|${metric}`) ?? new Map();
  const rawRatio = (test, metric) => {
    const a = plain('subject2', test, metric);
    const b = plain('subject', test, metric);
    return med([...a].filter(([round, v]) => v >= 0 && b.has(round) && b.get(round) > 0).map(([round, v]) => v / b.get(round)));
  };
  console.log('\n| metric | subject2 / subject, delivered | subject2 / subject, relay CPU |');
  console.log('|---|---|---|');
  for (const [name, test, metric] of tests) console.log(`| ${name} | ${f(rawRatio(test, metric))} | ${f(rawRatio(test, 'relay_cpu_pct'))} |`);
  console.log(`| UDP RTT p50 @2k pps | ${f(rawRatio('lat', 'p50_us'))} | ${f(rawRatio('lat', 'relay_cpu_pct'))} |`);
  console.log(`| UDP RTT p99 @2k pps | ${f(rawRatio('lat', 'p99_us'))} | – |`);
}
for (const s of subjects) {
  const pss = (t) => {
    const p = med([...(by.get(`${s}|${t}|pss_kb`) ?? new Map()).values()]);
    const p0 = med([...(by.get(`${s}|${t}|pss0_kb`) ?? new Map()).values()]);
    const ok = med([...(by.get(`${s}|${t}|ok`) ?? new Map()).values()]);
    return (p - p0) / ok;
  };
  const u = pss('idle_udp');
  const t = pss('idle_tcp');
  if (Number.isFinite(u) || Number.isFinite(t)) console.log(`\n${s}: idle memory ${f(u)} KB per UDP session (target <= 4), ${f(t)} KB per TCP connection`);
}

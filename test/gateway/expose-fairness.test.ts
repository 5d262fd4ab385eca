import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SluiceEvent } from '../../src/observe/events.js';
import type { UdpDatapath } from '../../src/datapath/udp-datapath.js';
import { selectUdpDatapath } from '../../src/datapath/native/select.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { freePort, waitFor } from '../helpers/net.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

/** Datagrams per second through the tunnel, each way: low enough that a one-process flooder surely exceeds it. */
const BUDGET = 1000;
/**
 * The flooder: open loop at ten times the budget, at most this many datagrams, for at most this
 * long (it also stops when told). Not faster: beyond the rate at which the process reads its
 * public socket, the kernel drops for everyone alike, which no scheduler behind the socket can
 * change (docs/expose.md, "Fairness under a flood"); the js datapath reads a datagram at several
 * times the native one's cost, so it gets half the rate.
 */
const FLOOD_RATE = { native: 10 * BUDGET, js: 5 * BUDGET };
const FLOOD_MAX = 600_000;
const FLOOD_MAX_MS = 15_000;
/** The second client's closed-loop round trips, at most one per PACE_MS (well under its fair share, BUDGET / 2). */
const ROUND_TRIPS = 400;
const PACE_MS = 4;
/**
 * Round trips without the flood first. Without the budget the same flood made the second client's
 * p50 37 ms and its p99 246 ms. With it, on 2 cores shared by the flooder, the relay and this
 * client, the few worst round trips meet the machine's scheduler hiccups, not the fairness (p99,
 * the 4th worst of 400, was 5.5-5.7 ms on a quiet machine and 12-14 ms with other work beside it,
 * with no loss and p50 0.2-0.3 ms). So the suite bounds p95 (the 20th worst) at 10 ms, or four
 * times its p95 without the flood on a machine that cannot give even that, and p99 at 50 ms; both
 * fail without the budget. The 5 ms p99 figure is the bench's (bench/relay/flood-fairness.sh).
 */
const P99_BOUND_MS = 50;
const BASELINE_TRIPS = 200;

/**
 * A child process that sends 64-byte datagrams open-loop to `port` at `rate` (what is due at
 * each turn of its loop, at most 256, never more than 4096 queued), counts the echoes, and reports
 * when told to stop or when its count or time runs out.
 */
const flooder = (rate: number) => `
const dgram = require('node:dgram');
const [port] = process.argv.slice(2).map(Number);
const s = dgram.createSocket('udp4');
const payload = Buffer.alloc(64, 0x46); // 'F': the upstream answers these 4 times
let sent = 0, got = 0, stop = false, inflight = 0;
const started = Date.now();
s.on('message', () => { got++; });
process.on('message', (m) => { if (m === 'stop') stop = true; });
s.bind(0, '127.0.0.1', () => {
  process.send({ type: 'bound', port: s.address().port });
  const pump = () => {
    if (stop || sent >= ${FLOOD_MAX} || Date.now() - started > ${FLOOD_MAX_MS}) {
      return setTimeout(() => { process.send({ type: 'done', sent, got, ms: Date.now() - started }); s.close(); }, 200);
    }
    const due = Math.floor(((Date.now() - started) * ${rate}) / 1000) - sent;
    for (let i = 0; i < due && i < 256 && inflight < 4096; i++) { inflight++; sent++; s.send(payload, port, '127.0.0.1', () => { inflight--; }); }
    setImmediate(pump);
  };
  pump();
});
`;

/** A UDP upstream: echoes, and answers datagrams starting with 'F' (the flooder's) four times. */
async function amplifyingEcho(t: TestContext) {
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  s.on('message', (m, r) => {
    const copies = m[0] === 0x46 ? 4 : 1;
    for (let i = 0; i < copies; i++) s.send(m, r.port, r.address);
  });
  t.after(() => s.close());
  return (s.address() as import('node:net').AddressInfo).port;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function fairnessUnderFlood(t: TestContext, datapath: UdpDatapath | undefined) {
  const echoPort = await amplifyingEcho(t);
  const budget = `  datagramBudget: { perSecond: ${BUDGET} }\n`;
  const gw = await startGateway(t, gatewayConfig(`  keepaliveInterval: 100ms\n${budget}  services:\n    udp: { idleTimeout: 1s, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }\n`), undefined, datapath);
  const port = await freePort('udp');
  const { agent, seen: agentSeen } = await startAgent(
    t,
    agentConfig({ port: gw.port, fingerprint: gw.fingerprint }, `    echo: { local: 127.0.0.1:${echoPort}, remote: udp://127.0.0.1:${port}, udp: { rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } } }`, budget),
    undefined,
    datapath,
  );
  await published(agent);
  await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');

  // The second client: one round trip first, so its session exists before the flood.
  const victim = dgram.createSocket('udp4');
  victim.bind(0, '127.0.0.1');
  await once(victim, 'listening');
  t.after(() => victim.close());
  const victimPort = (victim.address() as import('node:net').AddressInfo).port;
  let waiting: { seq: number; sentAt: number; done: (rtt: number | undefined) => void; timer: NodeJS.Timeout } | undefined;
  victim.on('message', (m) => {
    const w = waiting;
    if (!w || m.readUInt32BE(0) !== w.seq) return; // a late answer to one written off
    waiting = undefined;
    clearTimeout(w.timer);
    w.done(performance.now() - w.sentAt);
  });
  const roundTrip = (seq: number) =>
    new Promise<number | undefined>((resolve) => {
      const buf = Buffer.alloc(64, 0x56); // 'V'
      buf.writeUInt32BE(seq, 0);
      const timer = setTimeout(() => {
        waiting = undefined;
        resolve(undefined);
      }, 250);
      waiting = { seq, sentAt: performance.now(), done: resolve, timer };
      victim.send(buf, port, '127.0.0.1');
    });
  assert.notEqual(await roundTrip(0), undefined, 'the second client is answered before the flood');
  // The same paced round trips without a flood: what this machine gives right now (it may be shared).
  const paced = async (first: number, count: number, until: () => boolean) => {
    const rtts: number[] = [];
    let lost = 0;
    let last = performance.now();
    for (let i = first; i < first + count && until(); i++) {
      const gap = PACE_MS - (performance.now() - last);
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      last = performance.now();
      const rtt = await roundTrip(i);
      if (rtt === undefined) lost++;
      else rtts.push(rtt);
    }
    return { rtts: rtts.sort((a, b) => a - b), lost };
  };
  const base = await paced(1, BASELINE_TRIPS, () => true);
  const baseP99 = percentile(base.rtts, 99);

  // The flood, from another process; it runs until told to stop (or its count or time runs out).
  const dir = mkdtempSync(join(tmpdir(), 'sluice-flood-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'flood.cjs'), flooder(FLOOD_RATE[datapath?.kind ?? 'js']));
  const child = fork(join(dir, 'flood.cjs'), [String(port)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.after(() => {
    if (child.exitCode === null) child.kill();
  });
  const messages: { type: string; port?: number; sent?: number; got?: number; ms?: number }[] = [];
  child.on('message', (m) => messages.push(m as never));
  await waitFor(() => messages.some((m) => m.type === 'bound'), 'flooder bound');
  const floodPort = messages.find((m) => m.type === 'bound')!.port!;
  const shed = gw.gateway.counters.datagramsToAgentShed;
  // The flood is on once it exceeds the agent's budget.
  await waitFor(() => shed['agent-budget'] + shed['session-share'] > 0, 'the flood exceeds the budget', 10_000);

  const { rtts, lost } = await paced(1 + BASELINE_TRIPS, ROUND_TRIPS, () => messages.every((m) => m.type !== 'done'));
  const shedDuringVictim = { ...shed };
  child.send('stop');
  await waitFor(() => messages.some((m) => m.type === 'done'), 'flooder done', 10_000);
  const flood = messages.find((m) => m.type === 'done')!;
  const p95 = percentile(rtts, 95);
  const p99 = percentile(rtts, 99);
  const p95Bound = Math.max(10, 4 * percentile(base.rtts, 95));
  const summary = `no flood: p99 ${baseP99.toFixed(2)} ms; flooder sent ${flood.sent} got ${flood.got} in ${flood.ms} ms; victim ${rtts.length} answered, lost ${lost}, p50 ${percentile(rtts, 50).toFixed(2)} ms, p95 ${p95.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms; gateway shed ${JSON.stringify(shedDuringVictim)}, agent shed ${JSON.stringify(agent.datagramCounters.shed)}`;
  t.diagnostic(summary);
  // Drops are reported per route by reason, and in the session records: the flooder's only.
  const route = gw.gateway.published()[0]!.route.name;
  await waitFor(() => gw.seen.some((e) => e.type === 'datagrams-dropped' && e.route === route && e.reason === 'session-share'), 'datagrams-dropped session-share', 5000);
  const ended = (clientPort: number) => gw.seen.find((e): e is Extract<SluiceEvent, { type: 'session-ended' }> => e.type === 'session-ended' && e.flow.client.port === clientPort);
  await waitFor(() => ended(floodPort) !== undefined && ended(victimPort) !== undefined, 'both public sessions ended (idle)', 10_000);
  const agentEnded = (clientPort: number) => agentSeen.find((e): e is Extract<SluiceEvent, { type: 'session-ended' }> => e.type === 'session-ended' && e.flow.client.port === clientPort);
  const victimRecord = `victim record dropped ${JSON.stringify(ended(victimPort)!.dropped)}, agent-side ${JSON.stringify(agentEnded(victimPort)?.dropped)}`;
  t.diagnostic(victimRecord);
  assert.equal(rtts.length + lost, ROUND_TRIPS, `the flood lasted through the second client's ${ROUND_TRIPS} round trips: ${summary}; ${victimRecord}`);
  assert.ok(lost < ROUND_TRIPS / 100, `the second client lost ${lost} of ${ROUND_TRIPS} (< 1 %)`);
  assert.ok(p95 < p95Bound, `the second client's p95 is ${p95.toFixed(2)} ms (< ${p95Bound.toFixed(2)} ms): ${summary}`);
  assert.ok(p99 < P99_BOUND_MS, `the second client's p99 is ${p99.toFixed(2)} ms (< ${P99_BOUND_MS} ms): ${summary}`);

  // The flooder lost its own excess as session-share at the gateway and, for its 4x answers, at the agent.
  assert.ok(shedDuringVictim['session-share'] > 0, 'gateway: session-share drops');
  assert.ok(shedDuringVictim['agent-budget'] > 0, 'gateway: agent-budget drops while the flooder was alone');
  assert.ok(agent.datagramCounters.shed['session-share'] + agent.datagramCounters.shed['agent-budget'] > 0, 'agent: the flooder\'s amplified answers were shed');
  // ...and stayed usable at its share: answers kept coming at a good part of half the budget.
  const floodSeconds = flood.ms! / 1000;
  assert.ok(flood.got! > 0.2 * (BUDGET / 2) * floodSeconds, `the flooder got ${flood.got} answers in ${floodSeconds} s`);

  assert.ok((ended(floodPort)!.dropped?.['session-share'] ?? 0) > 0, 'the flooder\'s record carries its session-share drops');
  assert.equal(ended(victimPort)!.dropped?.['session-share'], undefined, 'the second client\'s record has no session-share drops');
}

test('a flooding connectee loses its own excess: a second client through the same agent keeps < 1 % loss, p95 < 10 ms and p99 < 50 ms (js datapath)', async (t) => {
  await fairnessUnderFlood(t, undefined);
});

test('the same on the native datapath', async (t) => {
  const sel = selectUdpDatapath('auto');
  if (!(sel.datapath instanceof NativeDatapath)) {
    t.skip(`native datapath unavailable: ${sel.fallback}`);
    return;
  }
  t.after(() => (sel.datapath as NativeDatapath).destroy());
  await fairnessUnderFlood(t, sel.datapath);
});

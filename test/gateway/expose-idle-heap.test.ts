import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { freePort, udpEcho, waitFor } from '../helpers/net.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

const SESSIONS = 1900;
const WARM = 50;
const UNLIMITED = '{ idleTimeout: 120s, maxSessions: 0, maxSessionsPerSource: 0, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }';
/**
 * JavaScript heap per idle exposed UDP session, the gateway's and the agent's objects together
 * (docs/benchmarks.md, "Idle exposed UDP sessions: where the memory goes" and "Idle exposed UDP
 * sessions: garbage-free sweeps"): 1.23-1.53 KB measured here on the native datapath, 1.96-2.11 KB
 * on the js one (each agent session's socket toward the local service is a Node socket there);
 * the bounds leave room for the hash tables' growth steps.
 */
const MAX_HEAP_BYTES_PER_SESSION = process.env.SLUICE_TEST_DATAPATH === 'native' ? 1700 : 2400;

/** Fails when `o` holds a function (a closure of its own) or a timer in a field. */
function assertPlain(o: object, what: string): void {
  for (const [k, v] of Object.entries(o)) {
    assert.notEqual(typeof v, 'function', `${what}.${k} is a function`);
    const name = (v as { constructor?: { name?: string } } | null)?.constructor?.name;
    assert.ok(name !== 'Timeout' && name !== 'Immediate', `${what}.${k} is a timer`);
  }
}

/**
 * Bytes allocated on the JavaScript heap per idle session per second while the sessions stay
 * idle (the tables' sweeps walk them four times a second each), beyond what the process
 * allocates idle without them. A walk that allocates per session keeps V8 from shrinking its
 * young generation back after the burst that opened the sessions (docs/benchmarks.md); a
 * generator walk measured 380-640 B here, Map.forEach -90 to 110 B (the rest of the process is noisy).
 */
const MAX_IDLE_ALLOC_PER_SESSION_SECOND = 200;
const IDLE_WINDOW_MS = 3000;

/**
 * Bytes allocated on the JavaScript heap during `ms`: the positive steps of the used heap,
 * sampled every 10 ms, so a scavenge in between loses at most one step's bytes.
 */
async function allocatedDuring(ms: number): Promise<number> {
  let total = 0;
  let last = getHeapStatistics().used_heap_size;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    const now = getHeapStatistics().used_heap_size;
    if (now > last) total += now - last;
    last = now;
  }
  return total;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes of live objects after a full collection; compiled code (which the run itself grows) left out. */
function heapUsed(): number {
  for (let i = 0; i < 4; i++) gc();
  return getHeapSpaceStatistics().reduce((sum, s) => (s.space_name.startsWith('code') ? sum : sum + s.space_used_size), 0);
}

test(`${SESSIONS} idle exposed UDP sessions cost at most ${MAX_HEAP_BYTES_PER_SESSION} bytes of heap each, gateway and agent together`, async (t) => {
  const echo = await udpEcho(t);
  const { gateway, fingerprint, port: gwPort, seen: gwSeen } = await startGateway(t, gatewayConfig(`  keepaliveInterval: 1s\n  services:\n    udp: ${UNLIMITED}\n`));
  const port = await freePort('udp');
  const { agent, seen: agentSeen } = await startAgent(t, agentConfig({ port: gwPort, fingerprint }, `    echo: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:${port}, udp: ${UNLIMITED} }`));
  await published(agent);
  const sockets: dgram.Socket[] = [];
  t.after(() => sockets.forEach((s) => s.close()));
  let answered = 0;
  const onAnswer = () => answered++;
  for (let i = 0; i < SESSIONS; i++) {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    s.on('message', onAnswer);
    sockets.push(s);
  }
  // A few sessions first, so what a process makes once (the first sessions' shapes, feedback) is in the baseline.
  for (const s of sockets.slice(0, WARM)) s.send('warm', port, '127.0.0.1');
  await waitFor(() => answered >= WARM, 'the first answers', 10_000);
  // The suites' helpers record every event; records are not the sessions' cost.
  gwSeen.length = 0;
  agentSeen.length = 0;
  const before = heapUsed();
  const idleBefore = await allocatedDuring(IDLE_WINDOW_MS);
  // SNAP=DIR: heap snapshots before and after, for bench/relay/heap-by-kind.mjs.
  if (process.env.SNAP) writeHeapSnapshot(`${process.env.SNAP}/before.heapsnapshot`);
  for (const [i, s] of sockets.entries()) {
    if (i < WARM) continue;
    s.send(`hello ${i}`, port, '127.0.0.1');
    if (i % 50 === 49) await waitFor(() => answered >= i - 10, `answers up to ${i}`, 10_000);
  }
  await waitFor(() => answered >= SESSIONS, 'every session answered once', 20_000);
  const link = gateway.agents()[0]!;
  const svc = agent.local.services[0]!;
  assert.equal(link.connectees, SESSIONS, 'one connectee tag per client');
  assert.equal(svc.table!.size, SESSIONS, 'one agent session per client');
  // The shape: a session, its entry and its channel at the agent carry no closure and no timer of their own.
  for (const x of [...svc.table!.sessions()].slice(0, 10)) {
    assertPlain(x, 'UdpSession');
    assert.ok(x.clientRef !== null, 'the session knows its entry');
    assertPlain(x.clientRef!, 'ClientEntry');
    assertPlain(x.channel!, 'channel');
  }
  gwSeen.length = 0;
  agentSeen.length = 0;
  const perSession = (heapUsed() - before) / (SESSIONS - WARM);
  if (process.env.SNAP) writeHeapSnapshot(`${process.env.SNAP}/after.heapsnapshot`);
  t.diagnostic(`heap per idle session, gateway + agent: ${perSession.toFixed(0)} B`);
  assert.ok(perSession > 100, `the measure sees the sessions (${perSession.toFixed(0)} B each)`);
  assert.ok(perSession <= MAX_HEAP_BYTES_PER_SESSION, `heap per idle session ${perSession.toFixed(0)} B > ${MAX_HEAP_BYTES_PER_SESSION} B`);
  // Idle: the sweeps of both tables walk every session without allocating for it.
  const idleAfter = await allocatedDuring(IDLE_WINDOW_MS);
  const idleAlloc = (idleAfter - idleBefore) / (SESSIONS - WARM) / (IDLE_WINDOW_MS / 1000);
  t.diagnostic(`allocated while idle: ${idleBefore} B before the sessions, ${idleAfter} B with them (${IDLE_WINDOW_MS} ms): ${idleAlloc.toFixed(1)} B per session per second`);
  assert.ok(idleAlloc <= MAX_IDLE_ALLOC_PER_SESSION_SECOND, `idle sessions allocate ${idleAlloc.toFixed(1)} B each per second > ${MAX_IDLE_ALLOC_PER_SESSION_SECOND}`);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { nativeCase } from '../datapath/datapaths.js';
import { forwarded } from '../datapath/forwarded.js';
import { waitFor } from '../helpers/net.js';
import { nextMessage } from '../helpers/udp-flood-clients.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

/** The send budget of both sides (datagrams/s): 50 a round of 10 ms. */
const BUDGET = 5_000;
/** Sessions whose replies pile up at the agent, and the replies the service sends per request. */
const SESSIONS = 100;
const AMPLIFY = 200;
/**
 * The new session's closed loop: bursts of WINDOW, each answered whole, the next 20 ms later (800/s,
 * within its budget alone: what it loses is what the quiet sessions' backlog takes from it).
 */
const WINDOW = 16;
const ROUNDS = 10;

/**
 * A child process (CommonJS; no args) with the upstream service and the public clients. The
 * service echoes a datagram once, or AMPLIFY times when it starts with 'A' (once per client, whose
 * index is in bytes 1-2). `warm PORT`: SESSIONS clients, each one round trip (their sessions
 * established and handed over to the batch); `ping`: each sends one more datagram (answered once);
 * `load`: each sends one 'A' (again every 50 ms until the service has it) and then nothing, their
 * sockets kept open (`loaded` once the service has sent every reply); `echo`: a new client's
 * closed loop of ROUNDS bursts of WINDOW (each burst given 3 s), reporting {sent, got, late} with
 * what the old clients received meanwhile. Every load is bounded in count.
 */
const child = `
const dgram = require('node:dgram');
const svc = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
let amplified = 0;
// The clients (by index, in the datagram's bytes 1-2) whose 'A' the service has amplified: once each.
const loadedFrom = new Set();
const sent = () => { if (++amplified === ${SESSIONS * AMPLIFY}) process.send({ type: 'loaded', amplified }); };
svc.on('message', (m, r) => {
  if (m[0] !== 0x41) return svc.send(m, r.port, r.address);
  const from = m.readUInt16BE(1);
  if (loadedFrom.has(from)) return;
  loadedFrom.add(from);
  for (let i = 0; i < ${AMPLIFY}; i++) svc.send(m, r.port, r.address, sent);
});
const clients = [];
let port = 0, oldGot = 0;
const payload = (c) => Buffer.alloc(64, c);
process.on('message', (m) => {
  if (m.startsWith('warm ')) {
    port = +m.slice(5);
    let answered = 0, bound = 0, tries = 0;
    const waiting = new Set();
    // New sessions beyond the budget's round are dropped at first: asked again until each is answered.
    const ask = () => {
      for (const k of waiting) k.send(payload(0x45), port, '127.0.0.1');
      if (waiting.size > 0 && ++tries < 100) setTimeout(ask, 50);
    };
    for (let i = 0; i < ${SESSIONS}; i++) {
      const c = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
      c.on('message', () => { if (waiting.delete(c)) { if (++answered === ${SESSIONS}) process.send({ type: 'warm', answered }); } else oldGot++; });
      c.bind(0, '127.0.0.1', () => { if (++bound === ${SESSIONS}) ask(); });
      clients.push(c);
      waiting.add(c);
    }
  }
  if (m === 'ping') for (const c of clients) c.send(payload(0x45), port, '127.0.0.1');
  if (m === 'load') {
    // An 'A' may be shed on its way in (the gateway's budget takes 50 a round, this is 100 at
    // once): asked again, as the warm-up does, until the service has each.
    let tries = 0;
    const ask = () => {
      clients.forEach((c, i) => {
        if (loadedFrom.has(i)) return;
        const p = payload(0x41);
        p.writeUInt16BE(i, 1);
        c.send(p, port, '127.0.0.1');
      });
      if (loadedFrom.size < ${SESSIONS} && ++tries < 100) setTimeout(ask, 50);
    };
    ask();
  }
  if (m === 'echo') {
    const c = dgram.createSocket({ type: 'udp4' });
    let got = 0, sent = 0, round = 0, timer, open = false, tries = 0;
    const startOld = oldGot;
    const done = () => { clearTimeout(timer); c.close(); process.send({ type: 'echo', sent, got, late: oldGot - startOld }); };
    const burst = () => {
      if (round++ === ${ROUNDS}) return done();
      timer = setTimeout(done, 3000);
      for (let i = 0; i < ${WINDOW}; i++) { c.send(payload(0x45), port, '127.0.0.1'); sent++; }
    };
    // The session is opened first (one datagram, asked again until answered), then the bursts.
    const hello = () => { if (!open && ++tries < 50) { c.send(payload(0x48), port, '127.0.0.1'); timer = setTimeout(hello, 50); } };
    c.on('message', (d) => {
      if (d[0] === 0x48) { if (!open) { open = true; clearTimeout(timer); burst(); } return; }
      if (++got === sent) { clearTimeout(timer); setTimeout(burst, 20); }
    });
    c.bind(0, '127.0.0.1', hello);
  }
});
svc.bind(0, '127.0.0.1', () => process.send({ type: 'bound', svc: svc.address().port }));
`;

test('a backlog outlives its senders no longer (native): replies queued at the agent for sessions that went quiet are dropped as stale once they waited past the bound, counted by reason (counters, events, records), and a new session\'s closed loop is answered whole', async (t) => {
  const n = nativeCase();
  if (n.skip) return t.skip(n.skip);
  const datapath = n.datapath!;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-backlog-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'child.cjs'), child);
  const c = fork(join(dir, 'child.cjs'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.after(() => c.kill());
  const { svc } = await nextMessage(c, 'bound');

  const budget = `  datagramBudget: { perSecond: ${BUDGET} }\n`;
  const udp = '{ idleTimeout: 30s, isolateAbove: 0, maxSessions: 0, maxSessionsPerSource: 0, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }';
  const gw = await startGateway(t, gatewayConfig(`  keepaliveInterval: 100ms\n${budget}  services:\n    udp: ${udp}\n`), undefined, datapath);
  const { agent, seen } = await startAgent(
    t,
    // The agent's sessions end 2 s after their last datagram, so their records are read below.
    agentConfig({ port: gw.port, fingerprint: gw.fingerprint }, `    svc: { local: 127.0.0.1:${svc}, remote: udp://127.0.0.1:0, udp: ${udp.replace('30s', '2s')} }`, budget),
    undefined,
    datapath,
  );
  const port = (await published(agent)).svc!;
  await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');

  const f0 = forwarded(datapath as NativeDatapath);
  c.send(`warm ${port}`);
  await nextMessage(c, 'warm');
  // A session's entries are installed in the batch once it is admitted, so the warm-up's single
  // exchange may have gone through JavaScript whole: one more datagram each (`ping`, answered once)
  // until the batch has carried some.
  const inBatch = () => forwarded(datapath as NativeDatapath) > f0;
  for (let i = 0; i < 20 && !inBatch(); i++) {
    c.send('ping');
    await waitFor(inBatch, 'the sessions forwarded in the batch', 250).catch(() => {});
  }
  assert.ok(inBatch(), 'the sessions forwarded in the batch');

  // Each quiet session's service answers AMPLIFY times: far more than the budget lets out
  // (SESSIONS * AMPLIFY is four seconds of it), queued in the agent's sockets toward the service.
  c.send('load');
  await nextMessage(c, 'loaded');
  const shed = () => agent.datagramCounters.shed;
  // The budget's rate would serve that backlog for four seconds. Once the replies waited past the
  // bound, the parked queues' reads drop them instead: most of it goes as stale.
  const total = SESSIONS * AMPLIFY;
  const sent0 = agent.datagramCounters.toGateway;
  const accounted = () => {
    const d = agent.datagramCounters;
    return d.toGateway - sent0 + (d.shed.stale ?? 0) + d.shed['agent-budget'] + d.shed['session-share']; // stale: absent before it was counted
  };
  await waitFor(() => accounted() >= total * 0.9, 'the backlog sent or dropped', 10_000);
  assert.ok(shed().stale >= total / 2, `most of the backlog dropped as stale: ${shed().stale} of ${total} (${JSON.stringify(shed())})`);

  c.send('echo');
  const echo = await nextMessage(c, 'echo');
  t.diagnostic(`new session: ${echo.got} of ${echo.sent} answered; the quiet sessions got ${echo.late} meanwhile; agent shed ${JSON.stringify(shed())}; gateway shed ${JSON.stringify(gw.gateway.counters.datagramsToAgentShed)}`);
  assert.equal(echo.got, WINDOW * ROUNDS, 'the new session\'s closed loop is answered whole');
  // Counted by reason on the route too (datagrams-dropped events), batched once a second.
  await waitFor(() => seen.some((e) => e.type === 'datagrams-dropped' && e.reason === 'stale'), 'the route\'s stale drop events', 3000);
  const events = seen.filter((e) => e.type === 'datagrams-dropped' && e.reason === 'stale').reduce((s, e) => s + (e as { count: number }).count, 0);
  assert.ok(events > 0 && events <= shed().stale, `stale drop events ${events} (counters ${shed().stale})`);
  // And in the quiet sessions' records (their `end` lines), all of it once they ended.
  type Ended = Extract<SluiceEvent, { type: 'session-ended' }>;
  const recorded = () => seen.filter((e): e is Ended => e.type === 'session-ended').reduce((n, e) => n + (e.dropped?.stale ?? 0), 0);
  await waitFor(() => recorded() === shed().stale && seen.filter((e) => e.type === 'session-ended').length >= SESSIONS, 'the quiet sessions\' records carry their stale drops', 10_000);
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UdpDatapath } from '../../src/datapath/udp-datapath.js';
import { jsDatapath } from '../../src/datapath/js-datapath.js';
import type { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { nativeCase } from '../datapath/datapaths.js';
import { forwarded } from '../datapath/forwarded.js';
import { waitFor } from '../helpers/net.js';
import { nextMessage } from '../helpers/udp-flood-clients.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

/** The send budget of both sides (datagrams/s): 100 a round of 10 ms. */
const BUDGET = 10_000;
/**
 * What the client sends while the relay's loop is blocked: what a client paced at 2,000/s (a
 * fifth of the budget) sends in BLOCK_MS, four rounds' budget; all of it is read at once after.
 */
const BURST = 400;
const BLOCK_MS = 200;

/**
 * A child process (CommonJS; no args) with the upstream echo (so it answers while the relay's loop
 * is blocked) and the public client: `warm PORT` (paced round trips at 2,000/s for 300 ms),
 * `burst` (answers `bursting`, 20 ms later sends BURST datagrams at once, reports {sent, got} 1 s
 * after). Every load is bounded in count.
 */
const child = `
const dgram = require('node:dgram');
const echo = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
const client = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
echo.on('message', (m, r) => echo.send(m, r.port, r.address));
let got = 0, port = 0;
client.on('message', () => { got++; });
const payload = Buffer.alloc(64, 0x50);
process.on('message', (m) => {
  if (m.startsWith('warm ')) {
    port = +m.slice(5); got = 0;
    let sent = 0;
    const t = setInterval(() => { client.send(payload, port, '127.0.0.1'); if (++sent === 600) { clearInterval(t); setTimeout(() => process.send({ type: 'warm', sent, got }), 300); } }, 0.5);
  }
  if (m === 'burst') {
    got = 0;
    process.send({ type: 'bursting' });
    setTimeout(() => {
      for (let i = 0; i < ${BURST}; i++) client.send(payload, port, '127.0.0.1');
      setTimeout(() => { process.send({ type: 'report', sent: ${BURST}, got }); echo.close(); client.close(); }, 1000);
    }, 20);
  }
});
let bound = 0;
const ready = () => { if (++bound === 2) process.send({ type: 'bound', echo: echo.address().port }); };
echo.bind(0, '127.0.0.1', ready); client.bind(0, '127.0.0.1', ready);
`;

/**
 * A client of an exposure under the budget, read late: the relay's loop is blocked while it sends,
 * and its backlog is read in one round. The rounds it waited banked their budget, so nothing of it
 * is dropped as agent-budget (before, all but one round's budget was: the paced sweep's loss at
 * 40k/s when a stall met the client's move to a socket of its own).
 */
async function stalledClient(t: TestContext, datapath: UdpDatapath) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-stall-budget-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'client.cjs'), child);
  const c = fork(join(dir, 'client.cjs'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.after(() => c.kill());
  const { echo } = await nextMessage(c, 'bound');

  const budget = `  datagramBudget: { perSecond: ${BUDGET} }\n`;
  const udp = '{ idleTimeout: 5s, isolateAbove: 0, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }';
  const gw = await startGateway(t, gatewayConfig(`  keepaliveInterval: 100ms\n${budget}  services:\n    udp: ${udp}\n`), undefined, datapath);
  const { agent } = await startAgent(
    t,
    agentConfig({ port: gw.port, fingerprint: gw.fingerprint }, `    echo: { local: 127.0.0.1:${echo}, remote: udp://127.0.0.1:0, udp: { rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } } }`, budget),
    undefined,
    datapath,
  );
  const port = (await published(agent)).echo!;
  await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');

  const f0 = datapath.kind === 'native' ? forwarded(datapath as NativeDatapath) : 0;
  c.send(`warm ${port}`);
  const warm = await nextMessage(c, 'warm');
  assert.ok((warm.got as number) >= (warm.sent as number) * 0.9, `warm-up answered: ${warm.got} of ${warm.sent}`);
  // On native the session is forwarded in the batch: its budget is the pool's there.
  if (datapath.kind === 'native') assert.ok(forwarded(datapath as NativeDatapath) > f0 + 100, 'the batch forwards the session');

  c.send('burst');
  await nextMessage(c, 'bursting');
  const until = Date.now() + BLOCK_MS;
  while (Date.now() < until);
  const report = await nextMessage(c, 'report');
  const shed = () => ({ gateway: { ...gw.gateway.counters.datagramsToAgentShed }, agent: { ...agent.datagramCounters.shed } });
  t.diagnostic(`${datapath.kind}: ${report.got} of ${report.sent} answered after the stall; shed ${JSON.stringify(shed())}`);
  // The budgets first (what this is about), then what the client got (the kernel could lose some on a loaded machine, and say so).
  assert.deepEqual(shed(), { gateway: { 'agent-budget': 0, 'session-share': 0, stale: 0 }, agent: { 'agent-budget': 0, 'session-share': 0, stale: 0 } }, 'nothing shed by the send budgets');
  assert.equal(report.got, BURST, `every datagram of the backlog answered (shed ${JSON.stringify(shed())})`);
}

test('a client read late after a stall of the relay (native: its session in the batch, under the pool): its backlog is within the budget the stalled rounds banked, nothing dropped as agent-budget', async (t) => {
  const n = nativeCase();
  if (n.skip) return t.skip(n.skip);
  await stalledClient(t, n.datapath!);
});

test('a client read late after a stall of the relay (js): its backlog is within the budget the stalled rounds banked, nothing dropped as agent-budget', async (t) => {
  await stalledClient(t, jsDatapath);
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { SluiceEvent } from '../../src/observe/events.js';
import type { NativeBinding } from '../../src/datapath/native/binding.js';
import type { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { nativeKeys } from '../../src/datapath/native/native-keys.js';
import { countBudgetCalls } from '../helpers/budget-calls.js';
import { nativeCase } from '../datapath/datapaths.js';
import { sleep, waitFor } from '../helpers/net.js';
import { startPacedFlooder, startRoundTripClient } from '../helpers/udp-paced-flooder.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

// docs/expose.md, "Excess left in the kernel", through a real gateway and agent on loopback.

/** The gateway's budget toward the agent (datagrams/s); the flood is ten times it. */
const BUDGET = 2000;
const FLOOD_RATE = 10 * BUDGET;
const FLOOD_MAX_MS = 6000;
const ISOLATE_ABOVE = 500;

async function echo(t: TestContext): Promise<number> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => s.close());
  return s.address().port;
}

type Ended = Extract<SluiceEvent, { type: 'session-ended' }>;

test('exposure (native): a flooder over the budget on its own socket is parked, its excess dropped by the kernel and counted by the budget\'s reasons, no JavaScript per refused datagram, a second client keeps its echoes', async (t) => {
  const c = nativeCase();
  if (c.skip) return t.skip(c.skip);
  const dp = c.datapath! as NativeDatapath;
  const echoPort = await echo(t);
  const udp = `{ idleTimeout: 1s, isolateAbove: ${ISOLATE_ABOVE}, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }`;
  const gw = await startGateway(t, gatewayConfig(`  keepaliveInterval: 100ms\n  datagramBudget: { perSecond: ${BUDGET} }\n  services:\n    udp: ${udp}\n`), undefined, dp);
  const { agent } = await startAgent(t, agentConfig({ port: gw.port, fingerprint: gw.fingerprint }, `    echo: { local: 127.0.0.1:${echoPort}, remote: udp://127.0.0.1:0, udp: { rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } } }`), undefined, dp);
  const port = (await published(agent)).echo!;
  await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');
  const route = gw.gateway.published()[0]!.route.name;
  const keys = nativeKeys(dp)!;
  const parkState = () => (keys.b as unknown as NativeBinding).parkState!(keys.handle);

  // JavaScript's budget calls, counted: a refused datagram must not cost one.
  const admits = countBudgetCalls(t);

  // The second client: paced round trips, one at a time.
  const { socket: victim, roundTrip } = await startRoundTripClient(t, port);
  assert.ok(await roundTrip(0), 'the second client is answered before the flood');

  const { child, messages, count, floodPort } = await startPacedFlooder(t, port, FLOOD_RATE, FLOOD_MAX_MS);
  await waitFor(() => gw.seen.some((e) => e.type === 'udp-isolation' && e.change === 'isolated' && e.client.port === floodPort), 'the flooder isolated', 5000);
  await waitFor(() => parkState()[0] >= 10, 'its own socket parked, round after round', 5000);

  // A steady second of flood: what JavaScript is asked, against what the flooder sends.
  const before = await count();
  const admits0 = admits();
  let answered = 0;
  let trips = 0;
  for (const end = Date.now() + 1000; Date.now() < end; trips++) {
    if (await roundTrip(1 + trips)) answered++;
    await sleep(10);
  }
  const after = await count();
  const sentInWindow = after.sent! - before.sent!;
  const asked = admits() - admits0;
  t.diagnostic(`flood sent ${sentInWindow} in the window, JavaScript admit calls ${asked}, second client ${answered}/${trips}, park ${parkState().join(' ')}`);
  assert.ok(sentInWindow > 5 * BUDGET, `the flood ran over the budget (${sentInWindow} in about 1 s)`);
  // The second client's own datagrams (and a few of the flooder's at its hand-over) may ask; a
  // refused flood datagram never does.
  assert.ok(asked <= trips * 2 + 100, `JavaScript was asked ${asked} times while ${sentInWindow} flood datagrams arrived`);
  assert.ok(answered >= trips * 0.9, `the second client kept its echoes (${answered} of ${trips})`);

  child.send('stop');
  await waitFor(() => messages.some((m) => m.type === 'done'), 'flooder done', 10_000);
  // The records: the flooder's carries its excess by the budget's reasons, the second client's none.
  const ended = (p: number) => gw.seen.find((e): e is Ended => e.type === 'session-ended' && e.flow.client.port === p);
  await waitFor(() => ended(floodPort) !== undefined && ended(victim.address().port) !== undefined, 'both sessions ended (idle)', 10_000);
  const shed = ended(floodPort)!.dropped ?? {};
  const budgetDrops = (shed['agent-budget'] ?? 0) + (shed['session-share'] ?? 0);
  const kernel = gw.seen.filter((e) => e.type === 'datagrams-dropped' && e.route === route && e.reason === 'isolated-kernel').reduce((n, e) => n + (e as { count: number }).count, 0);
  const events = gw.seen.filter((e) => e.type === 'datagrams-dropped' && e.route === route && (e.reason === 'agent-budget' || e.reason === 'session-share')).reduce((n, e) => n + (e as { count: number }).count, 0);
  const counters = gw.gateway.counters.datagramsToAgentShed;
  t.diagnostic(`flooder's record dropped ${JSON.stringify(shed)}; isolated-kernel ${kernel}; budget events ${events}; gateway shed ${JSON.stringify(counters)}`);
  const done = messages.find((m) => m.type === 'done')!;
  assert.ok(budgetDrops > done.sent! / 3, `the flooder's record carries its excess by the budget's reasons (${budgetDrops} of ${done.sent} sent)`);
  assert.ok(counters['agent-budget'] + counters['session-share'] >= budgetDrops, 'the budget\'s counters too');
  await waitFor(() => gw.seen.filter((e) => e.type === 'datagrams-dropped' && e.route === route && (e.reason === 'agent-budget' || e.reason === 'session-share')).reduce((n, e) => n + (e as { count: number }).count, 0) >= budgetDrops, 'and the route\'s drop events', 3000);
  assert.equal(ended(victim.address().port)!.dropped, undefined, 'the second client\'s record has no drops');
});

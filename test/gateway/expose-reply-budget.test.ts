import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, udpClient, waitFor } from '../helpers/net.js';
import {
  amplifyingUpstream, dnsLikeUpstream, dnsQuery, wireguardLikeDownload, wireguardLikeUpstream,
} from '../helpers/udp-shapes.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

// The reply budget on the public side of an exposure (gateway.services.udp.replyBudget): the
// gateway's public listener is an ordinary UDP route, budgeted at the default unless set.

async function expose(t: import('node:test').TestContext, services: Record<string, number>, gatewayExtra = '') {
  const gw = await startGateway(t, gatewayConfig(gatewayExtra));
  const lines = Object.entries(services).map(([name, port]) => `    ${name}: { local: 127.0.0.1:${port}, remote: udp://127.0.0.1:0 }`).join('\n');
  const { agent } = await startAgent(t, agentConfig({ port: gw.port, fingerprint: gw.fingerprint }, lines));
  const ports = await published(agent);
  const dropped = (reason: string) =>
    gw.seen.filter((e): e is Extract<SluiceEvent, { type: 'datagrams-dropped' }> => e.type === 'datagrams-dropped' && e.reason === reason).reduce((s, e) => s + e.count, 0);
  return { gw, agent, ports, dropped };
}

test('exposure: spoofed 1-byte datagrams to an amplifying service get nothing back; real traffic passes at the default', async (t) => {
  const amp = await amplifyingUpstream(t, 50, 1000);
  const dns = await dnsLikeUpstream(t);
  const wg = await wireguardLikeUpstream(t);
  const { ports, dropped } = await expose(t, { amp: amp.port, dns: dns.port, wg: wg.port });

  const victim = await udpClient(t);
  for (let i = 0; i < 2; i++) {
    victim.send(ports.amp!, Buffer.alloc(1));
    await sleep(300);
  }
  await waitFor(() => amp.sent === 100, 'the service answered 2 x 50,000 bytes');
  await waitFor(() => dropped('reply-budget') === 100, 'all over budget at the gateway', 10_000);
  assert.equal(victim.inbox.length, 0);

  const c = await udpClient(t);
  for (let id = 1; id <= 40; id++) {
    const [q, a] = id % 2 === 0 ? [40, 1500] : [45, 1232];
    c.send(ports.dns!, dnsQuery(id, q, a));
    assert.equal((await c.next()).length, a);
  }
  const r = await wireguardLikeDownload(t, ports.wg!, 2000);
  assert.equal(r.received, 2000);
  t.diagnostic(`wireguard-like through the exposure: ${(r.bytes / r.sentBytes).toFixed(1)}x in ${r.ms} ms`);
  assert.equal(dropped('reply-budget'), 100, 'nothing of the real traffic was dropped');
});

test('exposure: gateway.services.udp.replyBudget off lifts the budget for a download-heavy flow', async (t) => {
  const wg = await wireguardLikeUpstream(t);
  const { ports, dropped } = await expose(t, { wg: wg.port }, '  services:\n    udp: { replyBudget: off }\n');
  const r = await wireguardLikeDownload(t, ports.wg!, 2000, 16);
  assert.equal(r.received, 2000);
  assert.equal(dropped('reply-budget'), 0);
});

test("exposure: gateway.agents.<name>.replyBudget sets one agent's budget over services.udp", async (t) => {
  const amp = await amplifyingUpstream(t, 10, 100);
  // The agent `home` gets its own budget, 2x over 1 s, as gateway.agents.home.replyBudget compiles
  // (parsing of the key: test/config/load.test.ts).
  const base = gatewayConfig();
  const home = base.agents.get('home')!;
  const gw = await startGateway(t, { ...base, agents: new Map([['home', { ...home, udp: { ...base.services.udp, replyBudget: { ratio: 2, windowMs: 1000 } } }]]) });
  const { agent } = await startAgent(t, agentConfig({ port: gw.port, fingerprint: gw.fingerprint }, `    amp: { local: 127.0.0.1:${amp.port}, remote: udp://127.0.0.1:0 }`));
  const ports = await published(agent);
  const c = await udpClient(t);
  c.send(ports.amp!, Buffer.alloc(100)); // 200 bytes of replies allowed for this agent's services
  await waitFor(() => amp.sent === 10, 'the service answered ten');
  const dropped = () => gw.seen.filter((e): e is Extract<SluiceEvent, { type: 'datagrams-dropped' }> => e.type === 'datagrams-dropped' && e.reason === 'reply-budget').reduce((s, e) => s + e.count, 0);
  await waitFor(() => dropped() === 8, 'eight over the agent budget');
  assert.equal(c.inbox.length, 2);
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { TOKEN } from '../gateway/expose-helpers.js';
import { tempDir } from '../helpers/peers.js';
import { waitFor } from '../helpers/net.js';
import { peerGatewayConfig, startAgent, startGateway, udpClient, udpEcho } from '../connect/connect-helpers.js';

/** Two gateways (one certificate), agents home and laptop homed on both, laptop connecting to home's wg. */
async function setup(t: TestContext, path: 'relay' | 'auto') {
  const state = await tempDir(t, 'sluice-homes-peers-');
  const a = await startGateway(t, peerGatewayConfig(state));
  const b = await startGateway(t, peerGatewayConfig(state));
  const echo = await udpEcho(t);
  const agent = (name: string, body: string) => {
    const r = parseConfig(
      `agent:\n  name: ${name}\n  gateways: [127.0.0.1:${a.port}, 127.0.0.1:${b.port}]\n  token: "${TOKEN}"\n  fingerprint: ${a.fingerprint}\n  reconnect: { initial: 50ms, max: 300ms }\n  peerCandidates: [loopback]\n${body}`,
    );
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.config.agent!;
  };
  const home = await startAgent(t, agent('home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop] }\n`));
  const laptop = await startAgent(t, agent('laptop', `  connect:\n    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0, path: ${path} }\n`));
  for (const x of [home, laptop]) await waitFor(() => x.agent.homes.every((h) => h.state === 'connected'), `${x.agent.config.name} on both gateways`);
  return { a, b, echo, home, laptop, listen: laptop.agent.connectRoutes[0]!.local.port };
}

test('peers ride the first gateway of the list; when it dies they move to the second and a relayed flow goes on', async (t) => {
  const { a, b, laptop, listen } = await setup(t, 'relay');
  const c = await udpClient(t);
  c.send('before', listen);
  await waitFor(() => c.got.includes('before'), 'reply through gateway A');
  assert.equal(a.gateway.counters.peerDatagramsToService, 1, 'relayed by A, the first gateway');
  assert.equal(b.gateway.counters.peerDatagramsToService, 0);

  await a.gateway.close();
  await waitFor(() => laptop.agent.homes[0]!.state !== 'connected', 'laptop saw A go');
  for (let i = 0; i < 5; i++) c.send(`after${i}`, listen);
  await waitFor(() => [0, 1, 2, 3, 4].every((i) => c.got.includes(`after${i}`)), 'replies through gateway B', 5000);
  assert.ok(b.gateway.counters.peerDatagramsToService >= 5, `relayed by B: ${b.gateway.counters.peerDatagramsToService}`);
  assert.equal(laptop.agent.peers.flows.length, 1, 'the same flow of the connect listener, re-opened on B');
});

test('with path auto a direct path survives the loss of the gateway that signalled it; the flow goes on and stays direct', async (t) => {
  const { a, b, laptop, listen } = await setup(t, 'auto');
  const c = await udpClient(t);
  c.send('d0', listen);
  await waitFor(() => c.got.includes('d0'), 'first reply');
  const link = laptop.agent.peers.links.get('home')!;
  await waitFor(() => link.path === 'direct', 'direct path through A signalling', 10_000);
  const signalsOnB = b.gateway.counters.signalsForwarded;
  assert.equal(signalsOnB, 0, 'no signalling through B while A is up');
  await a.gateway.close();
  await waitFor(() => laptop.agent.homes[0]!.state !== 'connected', 'laptop saw A go');
  for (let i = 1; i <= 20; i++) {
    c.send(`d${i}`, listen);
    await new Promise((r) => setTimeout(r, 20));
  }
  await waitFor(() => c.got.length >= 21, 'every reply after A died', 5000);
  await waitFor(() => link.path === 'direct', 'direct again', 10_000);
  t.diagnostic(`after A died: B relayed ${b.gateway.counters.peerDatagramsToService} datagrams, forwarded ${b.gateway.counters.signalsForwarded} signals; path ${link.path}`);
  assert.ok(laptop.agent.homes[1]!.state === 'connected');
});

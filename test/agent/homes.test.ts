import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/expose-config.js';
import type { Agent } from '../../src/agent/agent.js';
import { agentChange } from '../../src/agent/agent-change.js';
import { agentStatusView } from '../../src/ops/agent-view.js';
import { formatAgent } from '../../src/cli/status.js';
import { Registry } from 'prom-client';
import { registerExposeMetrics } from '../../src/ops/expose-metrics.js';
import { readAll, tcpConnect, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { TOKEN, gatewayConfig, startAgent, startGateway } from '../gateway/expose-helpers.js';

/** A gateway config with its own state dir, so its own certificate (gatewayConfig shares one). */
async function ownCertGateway(t: TestContext): Promise<GatewayConfig> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-homes-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = parseConfig(`gateway:\n  listen: 127.0.0.1:0\n  stateDir: ${dir}\n  agents:\n    home: { token: "${TOKEN}" }\n  ports: 1024-65535\n`);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config.gateway!;
}

function homedAgent(ports: number[], pins: string | string[], expose: string, extra = '') {
  const pinYaml = Array.isArray(pins) ? `[${pins.join(', ')}]` : pins;
  const yaml = `agent:\n  name: home\n  gateways: [${ports.map((p) => `127.0.0.1:${p}`).join(', ')}]\n  token: "${TOKEN}"\n  fingerprint: ${pinYaml}\n  reconnect: { initial: 50ms, max: 300ms }\n${extra}  expose:\n${expose}\n`;
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(`agent config: ${JSON.stringify(r.issues)}`);
  return r.config.agent!;
}

/** The public port service `name` has on home `i` (waits until bound there). */
async function boundOn(agent: Agent, i: number, name: string): Promise<number> {
  const svc = () => agent.homes[i]!.local.services.find((s) => s.config.name === name);
  await waitFor(() => agent.homes[i]!.state === 'connected' && svc()?.bound !== undefined, `${name} published on gateway ${i}`);
  return svc()!.bound!.port;
}

const SERVICES = (udp: number, tcp: number) => `    wg: { local: 127.0.0.1:${udp}, remote: udp://127.0.0.1:0 }\n    web: { local: 127.0.0.1:${tcp}, remote: tcp://127.0.0.1:0 }`;

test('config: gateways is a list, gateway and gateways together are refused at their line, homes needs gateways', () => {
  const pin = 'sha256:' + 'ab'.repeat(32);
  const ok = parseConfig(`agent:\n  name: a\n  gateways: [127.0.0.1:7000, gw.example.org:7001]\n  homes: 1\n  token: "${TOKEN}"\n  fingerprint: [${pin}, ${'sha256:' + 'cd'.repeat(32)}]\n`);
  assert.ok(ok.ok, JSON.stringify(!ok.ok && ok.issues));
  const a = ok.config.agent!;
  assert.deepEqual(a.gateways, [{ host: '127.0.0.1', port: 7000 }, { host: 'gw.example.org', port: 7001 }]);
  assert.deepEqual(a.gateway, { host: '127.0.0.1', port: 7000 });
  assert.equal(a.homes, 1);
  assert.deepEqual(a.fingerprints, ['ab'.repeat(32), 'cd'.repeat(32)]);
  const both = parseConfig(`agent:\n  name: a\n  gateway: 127.0.0.1:7000\n  gateways: [127.0.0.1:7001]\n  token: "${TOKEN}"\n  fingerprint: ${pin}\n`);
  assert.ok(!both.ok);
  const issue = both.issues.find((i) => i.path === 'agent.gateways');
  assert.ok(issue, JSON.stringify(both.issues));
  assert.equal(issue.line, 4);
  assert.match(issue.message, /not both/);
  const none = parseConfig(`agent:\n  name: a\n  token: "${TOKEN}"\n  fingerprint: ${pin}\n`);
  assert.ok(!none.ok && none.issues.some((i) => i.path === 'agent' && /gateways/.test(i.message)));
  const homes = parseConfig(`agent:\n  name: a\n  gateway: 127.0.0.1:7000\n  homes: 2\n  token: "${TOKEN}"\n  fingerprint: ${pin}\n`);
  assert.ok(!homes.ok && homes.issues.some((i) => i.path === 'agent.homes'));
});

test('an agent homed on two gateways publishes on both, echoes UDP and TCP through each, and keeps serving when one dies', async (t) => {
  const echo = await udpEcho(t);
  const web = await tcpServer(t);
  const a = await startGateway(t, gatewayConfig());
  const b = await startGateway(t, gatewayConfig());
  // gatewayConfig shares one state dir: both gateways hold one certificate, one pin.
  assert.equal(a.fingerprint, b.fingerprint);
  const { agent } = await startAgent(t, homedAgent([a.port, b.port], a.fingerprint, SERVICES(echo.port, web.port)));
  const udpPorts = [await boundOn(agent, 0, 'wg'), await boundOn(agent, 1, 'wg')];
  const tcpPorts = [await boundOn(agent, 0, 'web'), await boundOn(agent, 1, 'web')];
  assert.notEqual(udpPorts[0], udpPorts[1]);
  assert.equal(a.gateway.agent('home')?.state, 'attached');
  assert.equal(b.gateway.agent('home')?.state, 'attached');
  const client = await udpClient(t);
  for (const [i, port] of udpPorts.entries()) {
    client.send(port, `udp via ${i}`);
    assert.equal((await client.next()).toString(), `udp via ${i}`);
    const c = await tcpConnect(t, tcpPorts[i]!);
    c.end(`tcp via ${i}`);
    assert.equal((await readAll(c)).toString(), `tcp via ${i}`);
  }
  // Replies went back through the gateway that carried each request: one session per gateway at the agent.
  assert.equal(agent.homes[0]!.local.services[0]!.table!.size, 1);
  assert.equal(agent.homes[1]!.local.services[0]!.table!.size, 1);
  const view = agentStatusView(agent);
  assert.deepEqual(view.gateways.map((g) => [g.gateway, g.state, g.published, g.udpSessions]), [
    [`127.0.0.1:${a.port}`, 'connected', 2, 1],
    [`127.0.0.1:${b.port}`, 'connected', 2, 1],
  ]);
  assert.match(formatAgent(view).join('\n'), /GATEWAY\s+STATE/);
  const registry = new Registry();
  registerExposeMetrics(registry, () => ({ gateway: undefined, agent }));
  assert.match(await registry.metrics(), /sluice_agent_gateways\{state="connected"\} 2/);

  await a.gateway.close();
  await waitFor(() => agent.homes[0]!.state === 'waiting', 'gateway A seen lost');
  assert.equal(agent.state, 'connected', 'the agent as one is still connected (through B)');
  const text = await registry.metrics();
  assert.match(text, /sluice_agent_gateways\{state="connected"\} 1/);
  assert.match(text, /sluice_agent_connected 1/);
  assert.equal(agentStatusView(agent).gateways[0]!.state, 'waiting');
  // The client of A moves to B: a new session at the agent, answered.
  client.send(udpPorts[1]!, 'moved to B');
  assert.equal((await client.next()).toString(), 'moved to B');
  const c = await tcpConnect(t, tcpPorts[1]!);
  c.end('tcp after A died');
  assert.equal((await readAll(c)).toString(), 'tcp after A died');
  assert.equal(agent.lastDisconnect, agent.homes[0]!.lastDisconnect, 'the agent shows the latest loss: A');
});

test('a list of pins: each gateway of a fleet has its own certificate, a gateway outside the list is refused', async (t) => {
  const echo = await udpEcho(t);
  const web = await tcpServer(t);
  const a = await startGateway(t, await ownCertGateway(t));
  const b = await startGateway(t, await ownCertGateway(t));
  const c = await startGateway(t, await ownCertGateway(t));
  assert.notEqual(a.fingerprint, b.fingerprint);
  const { agent } = await startAgent(t, homedAgent([a.port, b.port, c.port], [a.fingerprint, b.fingerprint], SERVICES(echo.port, web.port)));
  await boundOn(agent, 0, 'wg');
  await boundOn(agent, 1, 'wg');
  await waitFor(() => agent.homes[2]!.lastDisconnect?.failure === 'certificate-mismatch', 'the third gateway refused by the pins');
  assert.match(agent.homes[2]!.lastDisconnect!.message, /none of the 2 pins/);
  assert.equal(c.gateway.agent('home'), undefined, 'no token was sent to the unpinned gateway');
});

test('homes: 1 holds one gateway; the other stands by and takes over when the held one is lost', async (t) => {
  const echo = await udpEcho(t);
  const web = await tcpServer(t);
  const a = await startGateway(t, gatewayConfig());
  const b = await startGateway(t, gatewayConfig());
  const { agent } = await startAgent(t, homedAgent([a.port, b.port], a.fingerprint, SERVICES(echo.port, web.port), '  homes: 1\n'));
  await boundOn(agent, 0, 'wg');
  assert.equal(agent.homes[1]!.state, 'standby');
  assert.equal(b.gateway.agent('home'), undefined);
  await a.gateway.close();
  const port = await boundOn(agent, 1, 'wg');
  assert.equal(agent.homes.filter((h) => h.state === 'connected' || h.state === 'connecting').length, 1);
  const client = await udpClient(t);
  client.send(port, 'through the standby');
  assert.equal((await client.next()).toString(), 'through the standby');
});

test('a reload adds and drops gateways: kept gateways keep their home, a dropped one hears GOAWAY', async (t) => {
  const echo = await udpEcho(t);
  const web = await tcpServer(t);
  const a = await startGateway(t, gatewayConfig());
  const b = await startGateway(t, gatewayConfig());
  const first = homedAgent([a.port], a.fingerprint, SERVICES(echo.port, web.port));
  const { agent } = await startAgent(t, first);
  await boundOn(agent, 0, 'wg');
  const homeA = agent.homes[0]!;
  const both = homedAgent([a.port, b.port], a.fingerprint, SERVICES(echo.port, web.port));
  assert.equal(agentChange(first, both), 'connection', 'gateways is a connection setting');
  const connects = agent.counters.connects;
  await agent.updateConnection(both);
  assert.equal(agent.homes[0], homeA, 'A keeps its home');
  assert.equal(homeA.state, 'connected', 'and its connection: only the list changed');
  const portB = await boundOn(agent, 1, 'wg');
  const homeB = agent.homes[1]!;
  const client = await udpClient(t);
  client.send(portB, 'via B after reload');
  assert.equal((await client.next()).toString(), 'via B after reload');
  await waitFor(() => agent.counters.connects === connects + 1, 'B connected');
  await agent.updateConnection(homedAgent([b.port], a.fingerprint, SERVICES(echo.port, web.port)));
  assert.deepEqual(agent.homes, [homeB], 'B keeps its home, A is dropped');
  assert.equal(homeA.state, 'closed');
  await waitFor(() => a.gateway.agent('home')?.state !== 'attached', 'A lost the agent');
  assert.equal(homeB.state, 'connected');
  assert.equal(agent.counters.connects, connects + 1, 'one connection made over both reloads: to B');
  client.send(portB, 'B still serves');
  assert.equal((await client.next()).toString(), 'B still serves');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { tcpConnect, udpClient, waitFor } from '../helpers/net.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { parseConfig } from '../../src/config/load.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

// Bandwidth of an exposure is the gateway's: gateway.services.bandwidth and
// gateway.agents.<name>.bandwidth apply to the public listeners; the agent's config has no say.

test('exposure (udp): gateway.services.bandwidth drops what is over the per-source limit at the gateway, whatever the agent asks', async (t) => {
  const local = dgram.createSocket('udp4');
  let arrived = 0;
  local.on('message', () => arrived++);
  local.bind(0, '127.0.0.1');
  await once(local, 'listening');
  t.after(() => local.close());
  // 100 B/s and a burst of ten 1000-byte datagrams: in the few seconds this test runs at most one more refills.
  const gw = await startGateway(t, gatewayConfig('  services:\n    bandwidth: { perSource: { up: 800bit/s }, burst: 10000 }\n'));
  const { agent } = await startAgent(
    t,
    agentConfig({ port: gw.port, fingerprint: gw.fingerprint }, `    game: { local: 127.0.0.1:${local.address().port}, remote: udp://127.0.0.1:0, udp: { maxSessions: 100000 } }`),
  );
  const ports = await published(agent);
  const c = await udpClient(t);
  for (let i = 0; i < 30; i++) c.send(ports.game!, Buffer.alloc(1000, 3));
  const dropped = () =>
    gw.seen.filter((e): e is Extract<SluiceEvent, { type: 'datagrams-dropped' }> => e.type === 'datagrams-dropped' && e.reason === 'bandwidth').reduce((s, e) => s + e.count, 0);
  await waitFor(() => arrived >= 10 && arrived + dropped() === 30, 'every datagram passed or dropped as bandwidth');
  assert.ok(arrived <= 11, `${arrived} datagrams reached the service`);

  // The agent cannot carry a limit of its own for an exposure: the key is refused on the agent side.
  const own = parseConfig(`agent:\n  name: home\n  gateway: 127.0.0.1:1\n  token: "test-token-0123456789abcdef"\n  ca: /x\n  expose:\n    game: { local: 127.0.0.1:1, remote: udp://0.0.0.0:0, bandwidth: { perSource: 1Gbit/s } }\n`);
  assert.ok(!own.ok && own.issues.some((i) => i.path.startsWith('agent.expose.game')));
});

test("exposure (tcp): gateway.agents.<name>.bandwidth paces one agent's service downloads by backpressure, with every byte delivered", async (t) => {
  const size = 1_500_000;
  const server = net.createServer((s) => s.end(Buffer.alloc(size, 9)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const base = gatewayConfig();
  const limited = parseConfig(`gateway:\n  listen: 127.0.0.1:0\n  agents:\n    home: { token: "test-token-0123456789abcdef", bandwidth: { perSource: { down: 8Mbit/s }, burst: 64KiB } }\n  ports: 1024-65535\n`);
  assert.ok(limited.ok);
  const home = limited.config.gateway!.agents.get('home')!;
  const gw = await startGateway(t, { ...base, agents: new Map([['home', { ...base.agents.get('home')!, bandwidth: home.bandwidth! }]]) });
  const { agent } = await startAgent(
    t,
    agentConfig({ port: gw.port, fingerprint: gw.fingerprint }, `    files: { local: 127.0.0.1:${(server.address() as net.AddressInfo).port}, remote: tcp://127.0.0.1:0 }`),
  );
  const ports = await published(agent);
  const started = performance.now();
  const c = await tcpConnect(t, ports.files!);
  let got = 0;
  c.on('data', (b: Buffer) => (got += b.length));
  await once(c, 'end');
  const seconds = (performance.now() - started) / 1000;
  assert.equal(got, size);
  // 1 MB/s after a 64 KiB burst: a download of 1.5 MB cannot finish in less than ~1.43 s, however fast the machine.
  assert.ok(seconds >= (size - 64 * 1024) / 1e6 - 0.01, `downloaded ${size} bytes in ${seconds.toFixed(2)} s`);
  t.diagnostic(`1.5 MB at 8 Mbit/s through the exposure took ${seconds.toFixed(2)} s (ideal ${((size - 65536) / 1e6).toFixed(2)} s)`);
});

test("exposure (udp): gateway.agents.<name>.bandwidth.perAgent is one bucket over all of the agent's services; services.bandwidth's perSource still applies", async (t) => {
  const locals = await Promise.all(
    [0, 1].map(async () => {
      const sock = dgram.createSocket('udp4');
      const box = { sock, arrived: 0 };
      sock.on('message', () => box.arrived++);
      sock.bind(0, '127.0.0.1');
      await once(sock, 'listening');
      t.after(() => sock.close());
      return box;
    }),
  );
  const parsed = parseConfig(
    `gateway:\n  listen: 127.0.0.1:0\n  services: { bandwidth: { perSource: 1Gbit/s } }\n  agents:\n    home: { token: "test-token-0123456789abcdef", bandwidth: { perAgent: { up: 800bit/s }, burst: 10000 } }\n  ports: 1024-65535\n`,
  );
  assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.issues));
  const base = gatewayConfig('  services:\n    bandwidth: { perSource: 1Gbit/s }\n');
  const gw = await startGateway(t, { ...base, agents: new Map([['home', { ...base.agents.get('home')!, bandwidth: parsed.config.gateway!.agents.get('home')!.bandwidth! }]]) });
  const lines = locals.map((l, i) => `    s${i}: { local: 127.0.0.1:${l.sock.address().port}, remote: udp://127.0.0.1:0 }`).join('\n');
  const { agent } = await startAgent(t, agentConfig({ port: gw.port, fingerprint: gw.fingerprint }, lines));
  const ports = await published(agent);
  const c = await udpClient(t);
  for (let i = 0; i < 6; i++) c.send(ports.s0!, Buffer.alloc(1000, 4));
  await waitFor(() => locals[0]!.arrived === 6, 'six datagrams to the first service');
  for (let i = 0; i < 6; i++) c.send(ports.s1!, Buffer.alloc(1000, 5));
  const dropped = () =>
    gw.seen.filter((e): e is Extract<SluiceEvent, { type: 'datagrams-dropped' }> => e.type === 'datagrams-dropped' && e.reason === 'bandwidth').reduce((s, e) => s + e.count, 0);
  await waitFor(() => locals[1]!.arrived >= 4 && locals[1]!.arrived + dropped() === 6, 'the second service gets what the agent bucket has left');
  assert.ok(locals[1]!.arrived <= 5, `${locals[1]!.arrived} datagrams reached the second service`);
  const onlyRoutes = parseConfig(`routes:\n  a:\n    listen: udp://127.0.0.1:0\n    upstream: 127.0.0.1:53\n    bandwidth: { perAgent: 1Mbit/s }\n`);
  assert.ok(!onlyRoutes.ok, 'perAgent exists on gateway agents only');
});

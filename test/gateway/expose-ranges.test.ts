import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import type net from 'node:net';
import { once } from 'node:events';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';
import { bindTcpRange, bindUdpRange, withFreeRange } from '../helpers/port-range.js';
import { readAll, tcpConnect, udpClient, waitFor } from '../helpers/net.js';
import { agentStatusView } from '../../src/ops/agent-view.js';

/* Exposures with port ranges (docs/ranges.md, "Exposures"): one PUBLISH, a listener per public port on the gateway, offset-mapped to the agent's local range. */

const closeUdp = (socks: dgram.Socket[]) => socks.forEach((s) => s.close());
const closeTcp = (servers: net.Server[]) => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));

/** `count` local UDP services from a free base; each answers `<its port>:<datagram>`. */
async function localUdpRange(t: TestContext, count: number): Promise<number> {
  return withFreeRange(count, async (base) => {
    const socks = await bindUdpRange(base, count, (s, msg, r) => s.send(Buffer.concat([Buffer.from(`${s.address().port}:`), msg]), r.port, r.address));
    t.after(() => closeUdp(socks));
    return base;
  });
}

/** A base with `count` free ports of `kind` right now (bound, then released for the gateway to take). */
async function freeRange(count: number, kind: 'udp' | 'tcp'): Promise<number> {
  return withFreeRange(count, async (base) => {
    if (kind === 'udp') closeUdp(await bindUdpRange(base, count, () => {}));
    else await closeTcp(await bindTcpRange(base, count, () => {}));
    return base;
  });
}

test('a 100-port UDP exposure: every public port reaches its own local port and every client gets its reply', async (t) => {
  const local = await localUdpRange(t, 100);
  const pub = await freeRange(100, 'udp');
  // 100 clients from one address at once: no per-source rate on either side.
  const noRate = 'udp: { rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }';
  const gw = await startGateway(t, gatewayConfig(`  services:\n    ${noRate}\n`));
  const { agent } = await startAgent(t, agentConfig(gw, `    media: { local: "127.0.0.1:${local}-${local + 99}", remote: "udp://127.0.0.1:${pub}-${pub + 99}", ${noRate} }`));
  assert.deepEqual(await published(agent), { media: pub });
  const view = agentStatusView(agent).services[0]!;
  assert.deepEqual([view.local, view.remote, view.state], [`127.0.0.1:${local}-${local + 99}`, `udp://127.0.0.1:${pub}-${pub + 99}`, 'published']);
  const clients = await Promise.all(Array.from({ length: 100 }, () => udpClient(t)));
  clients.forEach((c, i) => c.send(pub + i, `hello-${i}`));
  const replies = await Promise.all(clients.map((c) => c.next(10_000)));
  replies.forEach((r, i) => assert.equal(r.toString(), `${local + i}:hello-${i}`, `port ${pub + i}`));
  // One published service, one route; its sessions name the public port each client reached.
  const [svc] = gw.gateway.published();
  assert.equal(svc!.route.name, 'home/media');
  const ports = svc!.route.sessions().map((s) => s.listenPort).sort((a, b) => a! - b!);
  assert.deepEqual(ports, Array.from({ length: 100 }, (_, i) => pub + i));
  // A second round on the same sessions: the agent knows each tag's port now (no origin needed).
  clients.forEach((c, i) => c.send(pub + i, `again-${i}`));
  const again = await Promise.all(clients.map((c) => c.next(10_000)));
  again.forEach((r, i) => assert.equal(r.toString(), `${local + i}:again-${i}`));
});

test('one local port for a UDP range: every public port goes to it, and the caps hold across the whole range', async (t) => {
  const local = await localUdpRange(t, 1);
  const pub = await freeRange(5, 'udp');
  const gw = await startGateway(t, gatewayConfig('  services:\n    udp: { maxSessions: 3 }\n'));
  const { agent } = await startAgent(t, agentConfig(gw, `    dns: { local: "127.0.0.1:${local}", remote: "udp://127.0.0.1:${pub}-${pub + 4}" }`));
  await published(agent);
  const clients = await Promise.all(Array.from({ length: 5 }, () => udpClient(t)));
  for (let i = 0; i < 3; i++) {
    clients[i]!.send(pub + i, `q${i}`);
    assert.equal((await clients[i]!.next(5000)).toString(), `${local}:q${i}`);
  }
  clients[3]!.send(pub + 3, 'q3');
  clients[4]!.send(pub + 4, 'q4');
  await waitFor(() => gw.rec.of('session-rejected').length >= 2, 'two refusals past the route cap');
  assert.deepEqual(gw.rec.of('session-rejected').map((e) => [e.route, e.reason]), [['home/dns', 'limit-route-sessions'], ['home/dns', 'limit-route-sessions']]);
  assert.equal(gw.gateway.published()[0]!.route.active, 3);
});

test('a 10-port TCP exposure: each public port reaches its own local port', async (t) => {
  const accepted = new Set<net.Socket>();
  const local = await withFreeRange(10, async (base) => {
    const servers = await bindTcpRange(base, 10, (srv, s) => void accepted.add(s.end(`${(srv.address() as net.AddressInfo).port}`)));
    t.after(() => {
      // The clients keep their half open: end the services' connections rather than wait for them.
      for (const s of accepted) s.destroy();
      return closeTcp(servers);
    });
    return base;
  });
  const pub = await freeRange(10, 'tcp');
  const gw = await startGateway(t, gatewayConfig());
  const { agent } = await startAgent(t, agentConfig(gw, `    ftp: { local: "127.0.0.1:${local}-${local + 9}", remote: "tcp://127.0.0.1:${pub}-${pub + 9}" }`));
  await published(agent);
  const bodies = await Promise.all(Array.from({ length: 10 }, async (_, i) => (await readAll(await tcpConnect(t, pub + i))).toString()));
  assert.deepEqual(bodies, Array.from({ length: 10 }, (_, i) => `${local + i}`));
  const started = gw.rec.of('session-started').map((e) => e.flow.listenPort).sort((a, b) => a! - b!);
  assert.deepEqual(started, Array.from({ length: 10 }, (_, i) => pub + i));
});

test('a range reaching outside the agent\'s ports is refused, naming the first port outside; the other services stay', async (t) => {
  const local = await localUdpRange(t, 1);
  const gw = await startGateway(t, gatewayConfigWithPorts('20000-20049'));
  const { agent, rec } = await startAgent(
    t,
    agentConfig(gw, `    wide: { local: "127.0.0.1:${local}", remote: "udp://127.0.0.1:20040-20059" }\n    ok: { local: "127.0.0.1:${local}", remote: "udp://127.0.0.1:0" }`),
  );
  await waitFor(() => rec.of('agent-publish-refused').length === 1 && agent.services().find((s) => s.config.name === 'ok')?.bound !== undefined, 'one refusal, one service up');
  const [r] = rec.of('agent-publish-refused');
  assert.equal(r!.service, 'wide');
  assert.equal(r!.code, 'port-outside-range');
  assert.match(r!.message, /ports 20040-20059: port 20050 is outside the ports this agent may use \(20000-20049\)/);
  assert.equal(gw.gateway.counters.publishRefused['port-outside-range'], 1);
  assert.equal(gw.gateway.published().length, 1);
});

/** The helpers' gateway with `ports` narrowed (the helper writes 1024-65535). */
function gatewayConfigWithPorts(ports: string) {
  const c = gatewayConfig();
  const range = [ports.split('-').map(Number) as [number, number]];
  return { ...c, ports: range, agents: new Map([...c.agents].map(([n, a]) => [n, { ...a, ports: range }])) };
}

test('a range with a port in use is refused whole: nothing of it stays bound', async (t) => {
  const local = await localUdpRange(t, 1);
  const pub = await freeRange(4, 'udp');
  const { default: dgramMod } = await import('node:dgram');
  const squatter = dgramMod.createSocket('udp4');
  squatter.bind(pub + 2, '127.0.0.1');
  await once(squatter, 'listening');
  t.after(() => squatter.close());
  const gw = await startGateway(t, gatewayConfig());
  const { rec } = await startAgent(t, agentConfig(gw, `    game: { local: "127.0.0.1:${local}", remote: "udp://127.0.0.1:${pub}-${pub + 3}" }`));
  await waitFor(() => rec.of('agent-publish-refused').length === 1, 'refused');
  assert.equal(rec.of('agent-publish-refused')[0]!.code, 'port-in-use');
  assert.equal(gw.gateway.published().length, 0);
  // The ports bound before the one in use were released: they can be bound again.
  closeUdp(await bindUdpRange(pub, 2, () => {}));
});

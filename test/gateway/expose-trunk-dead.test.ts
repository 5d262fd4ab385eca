import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { Registry } from 'prom-client';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { Agent } from '../../src/agent/agent.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { registerExposeMetrics } from '../../src/ops/expose-metrics.js';
import { DATA_HELLO_BYTES, TRUNK_HELLO_MAGIC } from '../../src/protocol/tunnel/index.js';
import { freePort, readAll, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { agentConfig, published } from './expose-helpers.js';
import { echo, keepaliveTimers, recordingGateway } from './dead-path.js';

/**
 * A trunk that died while idle (docs/tunnel-protocol.md, "Trunks": READY): the gateway attaches a
 * public client only once the agent's READY for its stream arrived on the trunk; a trunk silent
 * for READY_GRACE after STREAM_ACCEPT is closed and the client goes multiplexed, bytes intact,
 * counted. The agent-to-gateway path runs through a box that can silence the trunks it carries,
 * as a NAT that lost their mappings. Native stream datapath only (the js one has no trunks).
 */

const { test, datapathOf } = perStreamDatapath();

/** A TCP box between agent and gateway: everything passes until `silence()`, after which the trunks open now pass nothing more either way. */
async function box(t: TestContext, gwPort: number) {
  const sockets = new Set<net.Socket>();
  const trunks: { silent: boolean }[] = [];
  const server = net.createServer((c) => {
    const up = net.connect(gwPort, '127.0.0.1');
    sockets.add(c).add(up);
    const kill = () => (c.destroy(), up.destroy());
    c.on('error', kill).on('close', kill);
    up.on('error', kill).on('close', kill);
    let seen = 0;
    let trunk: { silent: boolean } | undefined;
    up.on('data', (d: Buffer) => {
      if (!trunk?.silent) c.write(d);
    });
    c.on('data', (d: Buffer) => {
      if (seen === 0 && d.length >= 4 && d.subarray(0, 4).equals(TRUNK_HELLO_MAGIC)) trunks.push((trunk = { silent: false }));
      const before = seen;
      seen += d.length;
      if (!trunk?.silent || before + d.length <= DATA_HELLO_BYTES) up.write(d);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    trunks: () => trunks.length,
    /** As a NAT flush: the trunks open now pass nothing more, and neither end hears of it. */
    silence: () => trunks.forEach((x) => (x.silent = true)),
  };
}

/** The Prometheus text of both ends' counters. */
async function scrape(gateway: Gateway, agent: Agent): Promise<string> {
  const registry = new Registry();
  registerExposeMetrics(registry, () => ({ gateway, agent }));
  return registry.metrics();
}

async function expose(t: TestContext) {
  const dp = datapathOf(t)!;
  const { gateway, seen, nextFlowId } = await recordingGateway(t, dp);
  const middle = await box(t, gateway.tcpAddress.port);
  const services: net.Socket[] = [];
  const local = (await tcpServer(t, (s) => (services.push(s), s.on('error', () => {}), s.pipe(s)))).port;
  const port = await freePort();
  // The agent's clock may be moved ahead (`skew`) to make its trunks look idle for long.
  const clock: Clock & { skew: number } = { ...systemClock, now: () => systemClock.now() + clock.skew, skew: 0 };
  const config = agentConfig({ port: middle.port, fingerprint: gateway.fingerprint }, `    svc: { local: 127.0.0.1:${local}, remote: tcp://127.0.0.1:${port} }`, '  dataConnections: 0\n  trunks: 1\n');
  const agent = await Agent.start(config, { clock, events: new EventStream(() => {}), nextFlowId, streamDatapath: dp });
  t.after(() => agent.close());
  await published(agent);
  const trunks = () => gateway.agent('home')?.dataConns?.trunks?.size ?? 0;
  await waitFor(() => trunks() === 1, 'the trunk at the gateway');
  return { gateway, seen, port, middle, trunks, agent, services, clock, gwPort: gateway.tcpAddress.port };
}


test('a trunk silent since it went idle: the stream goes multiplexed after READY_GRACE, bytes intact, counted no-ready; the trunk is closed and the next stream rides a new one', async (t) => {
  const { gateway, seen, port, middle, trunks, agent, services } = await expose(t);
  middle.silence();
  const started = performance.now();
  await echo(t, port, 300_000);
  const took = performance.now() - started;
  assert.ok(took >= 1900, `the client waited for READY_GRACE, no longer than that (${took.toFixed(0)} ms)`);
  const c = gateway.counters;
  assert.equal(c.trunkNoReady, 1, 'the silent trunk was counted');
  assert.equal(c.trunkStreams, 0);
  // The agent had dialed the service for the trunk too: the gateway's STREAM_RESET(cancel) closed it.
  assert.equal(services.length, 2);
  await waitFor(() => services[0]!.destroyed, 'the local connection of the dead trunk closed');
  await waitFor(() => seen.some((e) => e.type === 'session-ended'), 'session recorded');
  const ended = seen.find((e): e is Extract<SluiceEvent, { type: 'session-ended' }> => e.type === 'session-ended')!;
  assert.equal(ended.counters.bytesFromClient, 300_000);
  assert.equal(ended.counters.bytesToClient, 300_000);
  assert.ok(!seen.some((e) => e.type === 'dial-error'), 'no failed dial');
  // The gateway closed the silent trunk; the agent replaced it through the box (here the box passes the close on).
  await waitFor(() => middle.trunks() === 2 && trunks() === 1, 'a new trunk at the gateway');
  await echo(t, port, 100_000);
  assert.equal(c.trunkStreams, 1, 'the next stream rode the new trunk');
  assert.equal(c.trunkNoReady, 1);
  assert.equal(c.trunkFallbacks, 0);
  const ends = agent.counters.trunkEnds;
  assert.equal(Object.values(ends).reduce((a: number, b) => a + (b ?? 0), 0), 1, `the agent counted one trunk end: ${JSON.stringify(ends)}`);
  const text = await scrape(gateway, agent);
  assert.match(text, /sluice_gateway_trunk_streams_total\{result="no-ready"\} 1/);
  assert.match(text, /sluice_gateway_trunk_streams_total\{result="attached"\} 1/);
  assert.match(text, /sluice_agent_trunk_ends_total\{reason="E[A-Z_]+"\} 1/);
}, 'native');

test('a live trunk: READY comes with STREAM_ACCEPT, nothing waits for the grace, nothing falls back', async (t) => {
  const { gateway, port } = await expose(t);
  const started = performance.now();
  for (let i = 0; i < 5; i++) await echo(t, port, 20_000);
  assert.ok(performance.now() - started < 1900 * 5, 'no stream waited for the grace');
  assert.equal(gateway.counters.trunkStreams, 5);
  assert.equal(gateway.counters.trunkNoReady, 0);
  assert.equal(gateway.counters.trunkFallbacks, 0);
}, 'native');

test('the agent replaces a trunk idle both ways past its maximum idle age (not one carrying a stream), counted idle; the next stream rides the new one', async (t) => {
  const { gateway, port, middle, trunks, agent, clock } = await expose(t);
  const pool = agent.homes[0]!.trunks!;
  // A stream open: the trunk is busy, never replaced however long ago its last frame was.
  const busy = await tcpConnect(t, port);
  busy.write('x');
  assert.equal((await once(busy, 'data'))[0].toString(), 'x');
  clock.skew = 10 * 60_000;
  pool.replaceIdle();
  clock.skew = 0;
  assert.equal(agent.counters.trunkEnds.idle, undefined, 'a trunk carrying a stream stays');
  busy.end();
  await readAll(busy, 5000);
  // Idle both ways for 130 s (at most 120 s allowed): replaced, and a new one dialed at once.
  pool.replaceIdle(); // notes the frames the stream left
  clock.skew = 130_000;
  pool.replaceIdle();
  clock.skew = 0;
  assert.equal(agent.counters.trunkEnds.idle, 1);
  await waitFor(() => middle.trunks() === 2 && trunks() === 1, 'the gateway holds only the new trunk');
  await echo(t, port, 50_000);
  assert.equal(gateway.counters.trunkStreams, 2);
  assert.equal(gateway.counters.trunkNoReady + gateway.counters.trunkFallbacks, 0);
  assert.match(await scrape(gateway, agent), /sluice_agent_trunk_ends_total\{reason="idle"\} 1/);
}, 'native');


test('an idle trunk keeps TCP keepalive on at both ends (30 s)', async (t) => {
  const { gwPort, middle } = await expose(t);
  const agentSide = keepaliveTimers(`( dport = :${middle.port} )`);
  const gatewaySide = keepaliveTimers(`( sport = :${gwPort} )`);
  assert.equal(agentSide.length, 1, `the agent's trunk: ${agentSide}`);
  assert.equal(gatewaySide.length, 1, `the gateway's trunk: ${gatewaySide}`);
  for (const left of [...agentSide, ...gatewaySide]) assert.ok(left > 0 && left <= 30, `first probe within 30 s (${left})`);
}, 'native');

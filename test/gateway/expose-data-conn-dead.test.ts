import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { systemClock } from '../../src/core/clock.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { Agent } from '../../src/agent/agent.js';
import { DATA_HELLO_BYTES, DATA_READY_BYTES } from '../../src/protocol/tunnel/index.js';
import { freePort, tcpServer, waitFor } from '../helpers/net.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { agentConfig, published } from './expose-helpers.js';
import { echo, keepaliveTimers, recordingGateway } from './dead-path.js';

/**
 * A data connection that died while idle (docs/tunnel-protocol.md, "Data connections": READY):
 * the gateway commits a public client to it only once the agent's READY arrived on it; otherwise
 * the stream goes multiplexed, bytes intact, and the fallback is counted. The agent-to-gateway
 * path runs through a box that can make the data connections a NAT would have lost: silent both
 * ways, or closed or corrupted where READY passes. Once per stream datapath.
 */

const { test, datapathOf } = perStreamDatapath();

/** What the box does with a data connection's bytes after its hello. */
type Fate = 'pass' | 'silent' | 'close-at-ready' | 'corrupt-ready';

/** A TCP box between agent and gateway: control connections pass; data connections meet `fate(conn index)`. */
async function box(t: TestContext, gwPort: number) {
  const sockets = new Set<net.Socket>();
  const fates: Fate[] = [];
  const state = { dataConns: 0, fate: (_i: number): Fate => 'pass' };
  const server = net.createServer((c) => {
    const up = net.connect(gwPort, '127.0.0.1');
    sockets.add(c).add(up);
    const kill = () => (c.destroy(), up.destroy());
    c.on('error', kill).on('close', kill);
    up.on('error', kill).on('close', kill);
    let seen = 0;
    let index = -1;
    up.on('data', (d: Buffer) => {
      if (index < 0 || fates[index] === 'pass') c.write(d);
    });
    c.on('data', (d: Buffer) => {
      if (seen === 0 && d[0] === 0x53) index = state.dataConns++;
      const before = seen;
      seen += d.length;
      if (index < 0 || before + d.length <= DATA_HELLO_BYTES) return void up.write(d);
      // A data connection's bytes after its hello: its fate is decided now, when the first arrive.
      fates[index] ??= state.fate(index);
      const fate = fates[index]!;
      const hello = before < DATA_HELLO_BYTES ? d.subarray(0, DATA_HELLO_BYTES - before) : undefined;
      if (hello) up.write(hello);
      const rest = d.subarray(hello?.length ?? 0);
      if (fate === 'pass') return void up.write(rest);
      if (fate === 'close-at-ready') return void up.end();
      if (fate === 'corrupt-ready' && before + (hello?.length ?? 0) === DATA_HELLO_BYTES) {
        const bad = Buffer.from(rest);
        bad[DATA_READY_BYTES - 1]! ^= 1;
        fates[index] = 'pass';
        return void up.write(bad);
      }
      // silent: as a NAT that lost the mapping, nothing more passes either way.
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return Object.assign(state, { port: (server.address() as net.AddressInfo).port });
}

/** A gateway, an agent with one data connection reaching it through `box`, an echo service behind; the public port. */
async function expose(t: TestContext) {
  const dp = datapathOf(t)!;
  const { gateway, seen, nextFlowId } = await recordingGateway(t, dp);
  const middle = await box(t, gateway.tcpAddress.port);
  const services: net.Socket[] = [];
  const local = (await tcpServer(t, (s) => (services.push(s), s.pipe(s)))).port;
  const port = await freePort();
  const config = agentConfig({ port: middle.port, fingerprint: gateway.fingerprint }, `    svc: { local: 127.0.0.1:${local}, remote: tcp://127.0.0.1:${port} }`, '  dataConnections: 1\n  trunks: 0\n');
  const agent = await Agent.start(config, { clock: systemClock, events: new EventStream(() => {}), nextFlowId, streamDatapath: dp });
  t.after(() => agent.close());
  await published(agent);
  const idle = () => gateway.agent('home')?.dataConns?.idle ?? 0;
  await waitFor(() => idle() === 1, 'the idle data connection at the gateway');
  return { gateway, seen, port, middle, idle, agent, services, gwPort: gateway.tcpAddress.port };
}


test('a data connection silent since it went idle: the stream goes multiplexed after READY_GRACE, bytes intact, counted; the next rides a new one', async (t) => {
  const { gateway, seen, port, middle, idle, services } = await expose(t);
  middle.fate = (i) => (i === 0 ? 'silent' : 'pass');
  await echo(t, port, 300_000);
  // The agent had dialed the service for the dead connection too: the gateway's STREAM_RESET(cancel) closed it.
  assert.equal(services.length, 2);
  await waitFor(() => services[0]!.destroyed, 'the local connection of the dead data connection closed');
  const c = gateway.counters;
  assert.equal(c.dataConnDead['no-ready'], 1, 'the dead connection was counted');
  assert.equal(c.dataConnStreams, 1);
  await waitFor(() => seen.some((e) => e.type === 'session-ended'), 'session recorded');
  const ended = seen.find((e): e is Extract<SluiceEvent, { type: 'session-ended' }> => e.type === 'session-ended')!;
  assert.equal(ended.counters.bytesFromClient, 300_000);
  assert.equal(ended.counters.bytesToClient, 300_000);
  assert.ok(!seen.some((e) => e.type === 'dial-error'), 'no failed dial');
  // The agent refilled its pool through the box, and that one is alive.
  await waitFor(() => idle() === 1, 'a new idle data connection');
  await echo(t, port, 100_000);
  assert.equal(c.dataConnStreams, 2);
  assert.equal(c.dataConnDead['no-ready'], 1, 'the second stream rode its data connection');
});

test('a data connection closed or corrupted where READY should be: the stream goes multiplexed at once, counted by why', async (t) => {
  const { gateway, port, middle, idle } = await expose(t);
  middle.fate = (i) => (i === 0 ? 'close-at-ready' : i === 1 ? 'corrupt-ready' : 'pass');
  await echo(t, port, 50_000);
  assert.equal(gateway.counters.dataConnDead.closed, 1);
  await waitFor(() => idle() === 1, 'a new idle data connection');
  await echo(t, port, 50_000);
  assert.equal(gateway.counters.dataConnDead.forged, 1);
  await waitFor(() => idle() === 1, 'a new idle data connection');
  await echo(t, port, 50_000);
  assert.deepEqual(gateway.counters.dataConnDead, { closed: 1, forged: 1, 'no-ready': 0 });
  assert.equal(gateway.counters.dataConnStreams, 3);
});

test('an idle data connection closed by one end leaves the other end pool at once, and the agent dials a new one', async (t) => {
  const { gateway, port, idle, agent } = await expose(t);
  const c = gateway.counters;
  const pool = agent.homes[0]!.dataConns!;
  // The agent's end closes (as at its maximum idle age): the gateway drops it, it is never handed out.
  pool.take(1)!.conn.destroy();
  await waitFor(() => c.dataConnAccepted === 2 && idle() === 1, 'the gateway holds only the new one');
  await echo(t, port, 10_000);
  assert.deepEqual(c.dataConnDead, { closed: 0, forged: 0, 'no-ready': 0 }, 'the closed one was not tried');
  // The gateway's end closes: the agent sees it while idle and dials a new one (else its pool stays full of a dead one).
  await waitFor(() => c.dataConnAccepted === 3 && idle() === 1, 'the pool refilled after the stream');
  gateway.agent('home')!.dataConns!.take()!.conn.destroy();
  await waitFor(() => c.dataConnAccepted === 4 && idle() === 1, 'the agent replaced the one the gateway closed');
  await echo(t, port, 10_000);
  assert.deepEqual(c.dataConnDead, { closed: 0, forged: 0, 'no-ready': 0 });
  assert.equal(c.dataConnStreams, 2);
});

test('a data connection the agent no longer holds (its STREAM_RESET internal): the stream goes multiplexed, not a failed dial', async (t) => {
  const { gateway, seen, port, agent } = await expose(t);
  const taken = agent.homes[0]!.dataConns!.take(1)!; // out of the agent's pool, still open: the gateway cannot tell
  t.after(() => taken.conn.destroy());
  await echo(t, port, 20_000);
  assert.equal(gateway.counters.dataConnDead.closed, 1);
  assert.ok(!seen.some((e) => e.type === 'dial-error'), 'no failed dial');
});


test('idle pooled data connections keep TCP keepalive on at both ends (30 s), the control connection as before', async (t) => {
  const { gwPort, middle } = await expose(t);
  const agentSide = keepaliveTimers(`( dport = :${middle.port} )`);
  const gatewaySide = keepaliveTimers(`( sport = :${gwPort} )`);
  assert.equal(agentSide.length, 1, `the agent's one idle data connection: ${agentSide}`);
  assert.equal(gatewaySide.length, 1, `the gateway's one idle data connection: ${gatewaySide}`);
  for (const left of [...agentSide, ...gatewaySide]) assert.ok(left > 0 && left <= 30, `first probe within 30 s (${left})`);
});

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import type { AgentConfig, GatewayConfig } from '../../src/config/expose-config.js';
import { systemClock } from '../../src/core/clock.js';
import { EventStream } from '../../src/observe/events.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { Agent } from '../../src/agent/agent.js';
import { aclAdmitter } from '../../src/admission/acl-admitter.js';
import type { StreamDatapath } from '../../src/datapath/stream-datapath.js';
import { freePort, readAll, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { agentConfig, gatewayConfig, published } from './expose-helpers.js';

/**
 * Exposed TCP streams on trunks (docs/tunnel-protocol.md, "Trunks"; docs/expose.md "Trunks"), end
 * to end on loopback with a real gateway and agent (`agent.trunks: 1`, data connections off), once
 * per stream datapath: on the native one the streams ride the trunk; the js datapath has no trunks
 * and keeps the multiplexed path.
 */

const { test, datapathOf } = perStreamDatapath();

async function expose(t: TestContext, onSocket: (s: net.Socket) => void, agentExtra = '  trunks: 1\n  dataConnections: 0\n') {
  const dp: StreamDatapath = datapathOf(t)!;
  const local = (await tcpServer(t, onSocket)).port;
  const events = new EventStream((err) => {
    throw err;
  });
  let flow = 0;
  const gcfg: GatewayConfig = gatewayConfig('');
  const gateway = await Gateway.start(gcfg, {
    clock: systemClock,
    events,
    routeDeps: (route) => ({ admit: aclAdmitter(route.acl, undefined), nextFlowId: () => ++flow, streamDatapath: dp }),
    streamDatapath: dp,
  });
  t.after(() => gateway.close());
  const port = await freePort();
  const acfg: AgentConfig = agentConfig({ port: gateway.tcpAddress.port, fingerprint: gateway.fingerprint }, `    svc: { local: 127.0.0.1:${local}, remote: tcp://127.0.0.1:${port} }`, agentExtra);
  const agent = await Agent.start(acfg, { clock: systemClock, events: new EventStream(() => {}), nextFlowId: () => ++flow, streamDatapath: dp });
  t.after(() => agent.close());
  await published(agent);
  const trunks = () => gateway.agent('home')?.dataConns?.trunks;
  if (dp.trunk) await waitFor(() => (trunks()?.size ?? 0) > 0, 'a trunk at the gateway');
  return { port, trunks, native: dp.trunk !== undefined, gateway };
}

/** A service that reads everything, then answers `down` and ends. */
function answering(down: (got: Buffer) => Buffer) {
  return (s: net.Socket) => {
    const parts: Buffer[] = [];
    s.on('error', () => {});
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => s.end(down(Buffer.concat(parts))));
  };
}

test('trunk: 20 clients at once, byte-exact both ways, each half-close on its own; the streams rode the trunk', async (t) => {
  const e = await expose(t, answering((got) => Buffer.concat([got, got])));
  const clients = await Promise.all(Array.from({ length: 20 }, () => tcpConnect(t, e.port)));
  if (e.native) await waitFor(() => e.trunks()!.pick()!.trunk.stats()!.streams === 20, 'the 20 streams on the trunk');
  await Promise.all(
    clients.map(async (c, i) => {
      const up = randomBytes(10_000 + i * 20_000);
      c.end(up);
      const back = await readAll(c, 20_000);
      assert.deepEqual(back, Buffer.concat([up, up]), `client ${i}: the answer sent after its FIN, then the FIN`);
    }),
  );
  if (e.native) await waitFor(() => e.trunks()!.pick()!.trunk.stats()!.streams === 0, 'the streams forgotten');
  assert.equal(e.gateway.agent('home')!.streams, 0);
  assert.equal(e.gateway.counters.trunkStreams, e.native ? 20 : 0);
  assert.equal(e.gateway.counters.trunkFallbacks, 0);
});

test('trunk: killed mid-stream ends its streams with a reset; new clients still get through, and the agent dials a new trunk', async (t) => {
  const e = await expose(t, (s) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => s.write(d));
  });
  const c = await tcpConnect(t, e.port);
  c.write('one');
  await once(c, 'data');
  const first = e.trunks()!.pick()!;
  const saw = new Promise<string>((r) => c.once('error', (err: NodeJS.ErrnoException) => r(err.code ?? '')).once('end', () => r('end')));
  first.trunk.close();
  assert.equal(await saw, 'ECONNRESET', 'the client of a dead trunk is reset, not left hanging');
  const c2 = await tcpConnect(t, e.port);
  c2.write('two');
  const [echo] = await once(c2, 'data');
  assert.equal(String(echo), 'two', 'a new client goes multiplexed meanwhile');
  await waitFor(() => { const p = e.trunks()!.pick(); return p !== undefined && p !== first; }, 'a new trunk from the agent', 10_000);
  const c3 = await tcpConnect(t, e.port);
  c3.write('three');
  const [echo3] = await once(c3, 'data');
  assert.equal(String(echo3), 'three');
  assert.equal(e.trunks()!.pick()!.trunk.stats()!.streams, 1, 'the new client rides the new trunk');
}, 'native'); // the js datapath has no trunks: its streams stay multiplexed (the first test checks)

test('trunk: a trunk that dies between the open and the answer loses no client byte (the same client goes multiplexed)', async (t) => {
  const e = await expose(t, answering((got) => got));
  const trunks = e.trunks()!;
  const pick = trunks.pick.bind(trunks);
  let picked: ReturnType<typeof pick>;
  trunks.pick = () => {
    const p = (picked = pick());
    queueMicrotask(() => p?.trunk.close()); // after STREAM_OPEN named it, before any answer
    return p;
  };
  const c = await tcpConnect(t, e.port);
  const up = randomBytes(300_000);
  c.end(up);
  assert.deepEqual(await readAll(c, 10_000), up, 'every byte the client sent before and after');
  assert.ok(picked?.trunk.dead, 'the stream was opened on a trunk that then died');
  assert.equal(e.gateway.counters.trunkFallbacks, 1, 'counted as a fallback');
  assert.equal(e.gateway.counters.trunkStreams, 0);
}, 'native'); // the js datapath has no trunks: its streams stay multiplexed (the first test checks)

test('trunk: a client reset reaches the service as a reset, a service reset reaches the client', async (t) => {
  const services: net.Socket[] = [];
  const e = await expose(t, (s) => {
    s.on('error', () => {});
    services.push(s);
    s.on('data', () => s.write('seen'));
  });
  const c1 = await tcpConnect(t, e.port);
  c1.write('x');
  await once(c1, 'data');
  const serviceSaw = new Promise<string | undefined>((r) => services[0]!.once('error', (err: NodeJS.ErrnoException) => r(err.code)).once('end', () => r('end')));
  c1.resetAndDestroy();
  assert.equal(await serviceSaw, 'ECONNRESET');
  const c2 = await tcpConnect(t, e.port);
  c2.write('y');
  await once(c2, 'data');
  const clientSaw = new Promise<string | undefined>((r) => c2.once('error', (err: NodeJS.ErrnoException) => r(err.code)).once('end', () => r('end')));
  services[1]!.resetAndDestroy();
  assert.equal(await clientSaw, 'ECONNRESET');
  assert.equal(e.gateway.counters.trunkStreams, 2);
}, 'native'); // the js datapath has no trunks: its streams stay multiplexed (the first test checks)

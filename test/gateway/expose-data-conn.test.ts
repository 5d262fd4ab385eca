import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import type { AgentConfig, GatewayConfig } from '../../src/config/expose-config.js';
import { systemClock } from '../../src/core/clock.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { Agent } from '../../src/agent/agent.js';
import { aclAdmitter } from '../../src/admission/acl-admitter.js';
import type { StreamDatapath } from '../../src/datapath/stream-datapath.js';
import { DATA_HELLO_BYTES } from '../../src/protocol/tunnel/index.js';
import { freePort, readAll, refusedPort, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { agentConfig, gatewayConfig, published } from './expose-helpers.js';

/**
 * Exposed TCP streams on sealed data connections (docs/tunnel-protocol.md, "Data connections"), end
 * to end on loopback with a real gateway and agent, once per stream datapath (the gateway's tunnel
 * port, the public listener and the agent's dials all on it).
 */

const { test, datapathOf } = perStreamDatapath();

async function gatewayOn(t: TestContext, config: GatewayConfig, streamDatapath: StreamDatapath) {
  const events = new EventStream((err) => {
    throw err;
  });
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => seen.push(e));
  let flow = 0;
  const gateway = await Gateway.start(config, {
    clock: systemClock,
    events,
    routeDeps: (route) => ({ admit: aclAdmitter(route.acl, undefined), nextFlowId: () => ++flow, streamDatapath }),
    streamDatapath,
  });
  t.after(() => gateway.close());
  return { gateway, seen, port: gateway.tcpAddress.port, fingerprint: gateway.fingerprint };
}

async function agentOn(t: TestContext, config: AgentConfig, streamDatapath: StreamDatapath) {
  const events = new EventStream((err) => {
    throw err;
  });
  let flow = 1_000_000;
  const agent = await Agent.start(config, { clock: systemClock, events, nextFlowId: () => ++flow, streamDatapath });
  t.after(() => agent.close());
  return agent;
}

/** A gateway, an agent exposing a local TCP service (its sockets to `onSocket`), the public port. */
async function expose(t: TestContext, onSocket: (s: net.Socket) => void, opts: { agentExtra?: string; gatewayExtra?: string; local?: number; via?: (gwPort: number) => Promise<number> } = {}) {
  const dp = datapathOf(t)!;
  const local = opts.local ?? (await tcpServer(t, onSocket)).port;
  const gw = await gatewayOn(t, gatewayConfig(opts.gatewayExtra ?? ''), dp);
  const port = await freePort();
  const reach = opts.via ? await opts.via(gw.port) : gw.port;
  const agent = await agentOn(t, agentConfig({ port: reach, fingerprint: gw.fingerprint }, `    svc: { local: 127.0.0.1:${local}, remote: tcp://127.0.0.1:${port} }`, (opts.agentExtra ?? '  dataConnections: 8\n') + '  trunks: 0\n'), dp);
  await published(agent);
  const link = () => gw.gateway.agent('home')!;
  return { gw, agent, port, link };
}

const idleAtGateway = (link: () => { dataConns: { idle: number } | undefined }) => link().dataConns?.idle ?? 0;

test('data connections: bytes both ways and each half-close on its own; the session is recorded with its bytes', async (t) => {
  const up = randomBytes(2_000_000);
  const down = randomBytes(700_000);
  let got: Buffer | undefined;
  const { gw, port, link } = await expose(t, (s) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => {
      got = Buffer.concat(parts);
      s.end(down);
    });
  });
  await waitFor(() => idleAtGateway(link) > 0, 'an idle data connection at the gateway');
  const c = await tcpConnect(t, port);
  c.end(up);
  const back = await readAll(c, 10_000);
  assert.deepEqual(got, up, 'the service read everything the client sent, then its FIN');
  assert.deepEqual(back, down, 'the client read the answer sent after its own FIN, then the FIN');
  assert.equal(gw.gateway.counters.dataConnStreams, 1, 'the stream rode a data connection');
  await waitFor(() => gw.seen.some((e) => e.type === 'session-ended'), 'session recorded');
  const ended = gw.seen.find((e): e is Extract<SluiceEvent, { type: 'session-ended' }> => e.type === 'session-ended')!;
  assert.equal(ended.counters.bytesFromClient, up.length);
  assert.equal(ended.counters.bytesToClient, down.length);
  assert.equal(link().streams, 0);
});

test('data connections: a client reset reaches the service as a reset, a service reset reaches the client', async (t) => {
  const services: net.Socket[] = [];
  const { port, link } = await expose(t, (s) => {
    s.on('error', () => {});
    services.push(s);
    s.on('data', () => s.write('seen'));
  });
  await waitFor(() => idleAtGateway(link) > 1, 'idle data connections at the gateway');
  const c1 = await tcpConnect(t, port);
  c1.write('x');
  await once(c1, 'data');
  const serviceSaw = new Promise<string | undefined>((r) => services[0]!.once('error', (e: NodeJS.ErrnoException) => r(e.code)).once('end', () => r('end')));
  c1.resetAndDestroy();
  assert.equal(await serviceSaw, 'ECONNRESET');

  const c2 = await tcpConnect(t, port);
  c2.write('y');
  await once(c2, 'data');
  const clientSaw = new Promise<string | undefined>((r) => c2.once('error', (e: NodeJS.ErrnoException) => r(e.code)).once('end', () => r('end')));
  services[1]!.resetAndDestroy();
  assert.equal(await clientSaw, 'ECONNRESET');
});

test('data connections: a refused local dial is a failed dial: RST to a client that sent bytes, FIN to one that did not', async (t) => {
  const dead = await refusedPort(t);
  const { gw, port, link } = await expose(t, () => {}, { local: dead });
  await waitFor(() => idleAtGateway(link) > 1, 'idle data connections at the gateway');
  const c1 = await tcpConnect(t, port);
  let error: string | undefined;
  c1.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
  c1.write('request that reaches no service');
  await new Promise((r) => c1.once('close', r));
  assert.equal(error, 'ECONNRESET');
  const c2 = await tcpConnect(t, port);
  c2.on('error', (e) => assert.fail(`the client that sent nothing got ${e.message}`));
  c2.resume();
  await once(c2, 'end');
  await waitFor(() => gw.seen.filter((e) => e.type === 'dial-error').length === 2, 'two dial errors');
  const err = gw.seen.find((e) => e.type === 'dial-error');
  assert.ok(err?.type === 'dial-error' && err.code === 'SLUICE_ERR_DIAL_FAILED' && /refused/.test(err.message));
  assert.ok(!gw.seen.some((e) => e.type === 'session-started'), 'no session started');
  assert.equal(gw.gateway.counters.dataConnStreams, 2);
});

/** A TCP box in front of the gateway that records the first 48 bytes of each connection beginning "SLD1". */
async function recordingBox(t: TestContext, hellos: Buffer[]) {
  return async (gwPort: number) => {
    const server = net.createServer((c) => {
      const up = net.connect(gwPort, '127.0.0.1');
      let first: Buffer | undefined = Buffer.alloc(0);
      c.on('data', (d: Buffer) => {
        if (first) {
          first = Buffer.concat([first, d]);
          if (first.length >= DATA_HELLO_BYTES) {
            if (first[0] === 0x53) hellos.push(first.subarray(0, DATA_HELLO_BYTES));
            first = undefined;
          }
        }
      });
      c.pipe(up).pipe(c);
      const kill = () => (c.destroy(), up.destroy());
      c.on('error', kill).on('close', kill);
      up.on('error', kill).on('close', kill);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => server.close());
    return (server.address() as net.AddressInfo).port;
  };
}

async function sendHello(port: number, hello: Buffer): Promise<void> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.write(hello);
  await once(s, 'close');
}

test('data connections: a replayed, forged or unknown hello is closed and counted; nothing else changes', async (t) => {
  const hellos: Buffer[] = [];
  const { gw, port, link } = await expose(t, (s) => s.pipe(s), { via: await recordingBox(t, hellos), agentExtra: '  dataConnections: 2\n' });
  await waitFor(() => idleAtGateway(link) === 2 && hellos.length === 2, 'two idle data connections, their hellos recorded');
  const counters = gw.gateway.counters;
  await sendHello(gw.port, hellos[0]!);
  assert.equal(counters.dataConnRefused.replayed, 1, 'a hello seen before');
  const forged = Buffer.from(hellos[1]!);
  forged.writeUInt32BE(1000, 24); // a fresh counter: the HELLO record does not open under its key
  await sendHello(gw.port, forged);
  assert.equal(counters.dataConnRefused.forged, 1);
  const stranger = Buffer.from(hellos[1]!);
  stranger[5]! ^= 1;
  await sendHello(gw.port, stranger);
  assert.equal(counters.dataConnRefused['unknown-token'], 1);
  const garbage = Buffer.alloc(DATA_HELLO_BYTES, 0x53);
  await sendHello(gw.port, garbage);
  assert.equal(counters.dataConnRefused['bad-hello'], 1);
  assert.equal(idleAtGateway(link), 2, 'the pool is what the agent made');
  assert.equal(counters.dataConnAccepted, 2, 'none of the four was kept');
  const c = await tcpConnect(t, port);
  c.end('still fine');
  assert.equal((await readAll(c)).toString(), 'still fine');
  assert.equal(counters.dataConnStreams, 1);
});

test('data connections: an agent with dataConnections 0 keeps the multiplexed streams', async (t) => {
  const { gw, port, agent } = await expose(t, (s) => s.pipe(s), { agentExtra: '  dataConnections: 0\n' });
  const c = await tcpConnect(t, port);
  c.end('multiplexed');
  assert.equal((await readAll(c)).toString(), 'multiplexed');
  assert.equal(gw.gateway.counters.dataConnStreams, 0);
  assert.equal(gw.gateway.counters.dataConnAccepted, 0);
  assert.equal(agent.homes[0]!.dataConns, undefined);
});

test('data connections: the pool stays full as streams use it: each clean stream gives its connection back', async (t) => {
  const { gw, port, agent, link } = await expose(t, (s) => s.pipe(s), { agentExtra: '  dataConnections: 2\n' });
  for (let i = 0; i < 5; i++) {
    await waitFor(() => idleAtGateway(link) === 2 && agent.homes[0]!.dataConns?.idle === 2, `pool full before stream ${i}`);
    const c = await tcpConnect(t, port);
    c.end(`n${i}`);
    assert.equal((await readAll(c)).toString(), `n${i}`);
  }
  await waitFor(() => gw.gateway.counters.dataConnReused === 5, 'five connections back at the gateway');
  assert.equal(gw.gateway.counters.dataConnStreams, 5, 'every stream on a data connection');
  assert.equal(gw.gateway.counters.dataConnAccepted, 2, 'no new data connection: the two first ones came back');
  assert.equal(agent.homes[0]!.dataConns?.reused, 5);
});

test('data connections: one that sends "S" and nothing more is closed at the handshake timeout, counted, its pre-auth slot freed', async (t) => {
  const { gw, port } = await expose(t, (s) => s.pipe(s), { gatewayExtra: '  handshakeTimeout: 300ms\n' });
  const s = net.connect(gw.port, '127.0.0.1');
  s.on('error', () => {});
  s.write('S');
  await waitFor(() => gw.gateway.pendingHandshakes === 1, 'the silent connection holds a pre-auth slot');
  await new Promise((r) => s.once('close', r));
  assert.equal(gw.gateway.counters.dataConnRefused.timeout, 1);
  assert.equal(gw.gateway.pendingHandshakes, 0);
  const c = await tcpConnect(t, port);
  c.end('after');
  assert.equal((await readAll(c)).toString(), 'after');
});

// ---- Reuse (docs/tunnel-protocol.md, "Reuse"): a data connection whose stream ended with END both
// ways carries the next stream after a new hello.

/**
 * A TCP box in front of the gateway that follows each data connection's agent->gateway records: it
 * counts them and passes every hello after a connection's first through `next` (given that
 * hello and the connection's first), so a test can replay or forge them.
 */
async function helloBox(t: TestContext, next: (hello: Buffer, first: Buffer) => Buffer = (h) => h) {
  /** connections: data connections seen; closed: those either end closed (or the gateway ended). */
  const box = { connections: 0, closed: 0, nextHellos: 0 };
  const via = async (gwPort: number) => {
    const server = net.createServer({ allowHalfOpen: true }, (c) => {
      let data: boolean | undefined; // a data connection (its first byte "S"), else the control connection, passed as is
      const up = net.connect({ port: gwPort, host: '127.0.0.1', allowHalfOpen: true });
      let buf = Buffer.alloc(0);
      let first: Buffer | undefined;
      c.on('data', (d: Buffer) => {
        if (data === undefined && (data = d[0] === 0x53)) box.connections++;
        if (!data) return void up.write(d);
        buf = Buffer.concat([buf, d]);
        const out: Buffer[] = [];
        for (;;) {
          if (buf[0] === 0x53 || !first) {
            if (buf.length < DATA_HELLO_BYTES) break;
            const hello = buf.subarray(0, DATA_HELLO_BYTES);
            if (first) box.nextHellos++;
            out.push(first ? next(Buffer.from(hello), first) : hello);
            first ??= Buffer.from(hello);
            buf = buf.subarray(DATA_HELLO_BYTES);
            continue;
          }
          if (buf.length < 4) break;
          const size = 4 + buf.readUIntBE(1, 3) + 16;
          if (buf.length < size) break;
          out.push(buf.subarray(0, size));
          buf = buf.subarray(size);
        }
        if (out.length > 0) up.write(Buffer.concat(out));
      });
      c.on('end', () => up.end());
      up.pipe(c);
      let gone = false;
      const kill = () => {
        if (!gone && data) box.closed++;
        gone = true;
        c.destroy();
        up.destroy();
      };
      c.on('error', kill).on('close', kill);
      up.on('error', kill).on('close', kill).on('end', kill); // the gateway's FIN: it closed the connection
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => server.close());
    return (server.address() as net.AddressInfo).port;
  };
  return { box, via };
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('data connections: streams one after another ride the same TCP connections, each after a new hello, bytes intact both ways', async (t) => {
  const { box, via } = await helloBox(t);
  const { gw, port, agent, link } = await expose(t, (s) => s.pipe(s), { via, agentExtra: '  dataConnections: 2\n' });
  for (let i = 0; i < 4; i++) {
    await waitFor(() => idleAtGateway(link) === 2 && agent.homes[0]!.dataConns?.idle === 2, `two idle before stream ${i}`);
    const c = await tcpConnect(t, port);
    const up = randomBytes(150_000 + i);
    c.end(up);
    assert.equal(digest(await readAll(c, 10_000)), digest(up), `stream ${i} echoed whole`);
  }
  await waitFor(() => gw.gateway.counters.dataConnReused === 4, 'four connections back');
  assert.equal(box.connections, 2, 'two TCP connections for four streams');
  assert.equal(box.nextHellos, 4, 'one new hello per reuse');
  assert.equal(gw.gateway.counters.dataConnStreams, 4);
  assert.equal(gw.gateway.counters.dataConnAccepted, 2);
  assert.equal(agent.homes[0]!.dataConns?.reused, 4);
});

test('data connections: a stream the service resets does not give its connection back', async (t) => {
  const { box, via } = await helloBox(t);
  const { gw, port, agent, link } = await expose(
    t,
    (s) => {
      s.on('error', () => {});
      s.once('data', () => s.resetAndDestroy());
    },
    { via, agentExtra: '  dataConnections: 1\n' },
  );
  await waitFor(() => idleAtGateway(link) === 1, 'an idle data connection');
  const c = await tcpConnect(t, port);
  const saw = new Promise<string | undefined>((r) => c.once('error', (e: NodeJS.ErrnoException) => r(e.code)).once('end', () => r('end')));
  c.write('reset me');
  assert.equal(await saw, 'ECONNRESET');
  await waitFor(() => box.closed === 1 && idleAtGateway(link) === 1, 'the reset connection closed, a new one in the pool');
  assert.equal(box.connections, 2, 'a new TCP connection replaced it');
  assert.equal(box.nextHellos, 0);
  assert.equal(gw.gateway.counters.dataConnReused, 0);
  assert.equal(agent.homes[0]!.dataConns?.reused, 0);
});

test('data connections: a replayed or forged next hello is refused, counted and its connection closed', async (t) => {
  let mode: 'replay' | 'forge' = 'replay';
  const { box, via } = await helloBox(t, (hello, first) => {
    if (mode === 'replay') return first; // the connection's first hello again: its counter was seen
    hello[DATA_HELLO_BYTES - 1]! ^= 1; // the HELLO record's tag
    return hello;
  });
  const { gw, port, link } = await expose(t, (s) => s.pipe(s), { via, agentExtra: '  dataConnections: 2\n' });
  const counters = gw.gateway.counters;
  await waitFor(() => idleAtGateway(link) === 2, 'two idle data connections');
  const echo = async (text: string) => {
    const c = await tcpConnect(t, port);
    c.end(text);
    assert.equal((await readAll(c)).toString(), text);
  };
  await echo('one');
  await waitFor(() => counters.dataConnRefused.replayed === 1 && box.closed === 1, 'the replayed hello refused, its connection closed');
  mode = 'forge';
  await echo('two');
  await waitFor(() => counters.dataConnRefused.forged === 1 && box.closed === 2, 'the forged hello refused, its connection closed');
  assert.equal(counters.dataConnReused, 0, 'neither was pooled again');
  // The agent sees each refused connection closed while idle and dials a new one in its place.
  await waitFor(() => counters.dataConnAccepted === 4 && idleAtGateway(link) === 2, 'two new connections in place of the refused ones');
  await echo('three'); // on a new connection: nothing else changed
  assert.equal(counters.dataConnStreams, 3);
});

test('data connections: a pool larger than the pre-auth cap per source fills whole (its dials are spread out)', async (t) => {
  const { gw, link, agent } = await expose(t, (s) => s.pipe(s), { agentExtra: '  dataConnections: 40\n' });
  await waitFor(() => idleAtGateway(link) === 40, 'forty idle data connections at the gateway', 10_000);
  assert.equal(gw.gateway.counters.preAuthCapped, 0, 'none closed by the cap of 16 handshakes per source');
  assert.equal(gw.gateway.counters.dataConnAccepted, 40);
  assert.equal(agent.homes[0]!.dataConns?.idle, 40);
});

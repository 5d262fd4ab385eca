import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import { aclAdmitter } from '../../src/admission/acl-admitter.js';
import { systemClock } from '../../src/core/clock.js';
import type { StreamDatapath } from '../../src/datapath/stream-datapath.js';
import type { NativeStreamDatapath } from '../../src/datapath/native/native-stream-datapath.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { DEFAULT_STREAM_WINDOW_BYTES } from '../../src/protocol/tunnel/constants.js';
import { freePort, readAll, refusedPort, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { agentConfig, gatewayConfig, published } from './expose-helpers.js';

// Multiplexed exposed streams (no data connections) with the gateway's public client and the
// agent's local dial on the node's stream datapath: on the native one both ends are relayed by
// the engine without a Node socket (upstream/agent/conn-relay.ts); on js, through Node sockets.
const { test, datapathOf } = perStreamDatapath();

/** Counts the connections a datapath relays itself (native: conn-relay). */
function countRelayed(dp: StreamDatapath): { n: number } {
  const seen = { n: 0 };
  const orig = dp.relayed?.bind(dp);
  if (orig) {
    (dp as { relayed: typeof orig }).relayed = (conn, idle, events) => {
      const rc = orig(conn, idle, events);
      if (rc) seen.n++;
      return rc;
    };
    // The suite's datapath is shared by the process: put it back after this test.
  }
  return seen;
}

/** A gateway and an agent on the test's datapath exposing `service` (a handler, or a port that refuses). */
async function expose(t: TestContext, service: ((s: net.Socket) => void) | number, svcExtra = '') {
  const dp = datapathOf(t)!;
  const relayed = countRelayed(dp);
  if (dp.relayed) t.after(() => delete (dp as { relayed?: unknown }).relayed);
  const local = typeof service === 'number' ? { port: service } : await tcpServer(t, service);
  const seen: SluiceEvent[] = [];
  const events = new EventStream((err) => {
    throw err;
  });
  events.subscribe((e) => seen.push(e));
  let flow = 0;
  const gateway = await Gateway.start(gatewayConfig(), {
    clock: systemClock,
    events,
    routeDeps: (route) => ({ admit: aclAdmitter(route.acl, undefined), nextFlowId: () => ++flow, streamDatapath: dp }),
    streamDatapath: dp,
  });
  t.after(() => gateway.close());
  const gw = { port: gateway.tcpAddress.port, fingerprint: gateway.fingerprint };
  const port = await freePort();
  const agent = await Agent.start(agentConfig(gw, `    svc: { local: 127.0.0.1:${local.port}, remote: tcp://127.0.0.1:${port}${svcExtra} }`, '  dataConnections: 0\n  trunks: 0\n'), {
    clock: systemClock,
    events: new EventStream((err) => {
      throw err;
    }),
    nextFlowId: () => ++flow,
    streamDatapath: dp,
  });
  t.after(() => agent.close());
  await published(agent);
  const native = dp.kind === 'native';
  return { gateway, port, seen, relayed, native, dp };
}

const streamsOf = (g: Gateway) => g.agent('home')!.streams;

test('many concurrent streams echo byte-exact', async (t) => {
  const { port, relayed, native, gateway } = await expose(t, (s) => s.pipe(s));
  const payloads = Array.from({ length: 40 }, (_, i) => randomBytes(1000 + i * 7919));
  const got = await Promise.all(
    payloads.map(async (p) => {
      const c = await tcpConnect(t, port);
      c.end(p);
      return readAll(c, 10_000);
    }),
  );
  got.forEach((g, i) => assert.ok(g.equals(payloads[i]!), `stream ${i}: ${g.length} bytes back of ${payloads[i]!.length}`));
  await waitFor(() => streamsOf(gateway) === 0, 'streams gone');
  // Both ends of every stream (the public client and the local dial) were relayed by the engine.
  if (native) assert.equal(relayed.n, 2 * payloads.length);
});

test('half-close both ways: each FIN is forwarded and the other direction stays open', async (t) => {
  let late: string | undefined;
  const { port, gateway, seen } = await expose(t, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => {
      // 'S': the service half-closes first, then still reads; 'C': it answers the client's FIN.
      if (chunks.length === 0 && c[0] === 0x53) s.end('banner');
      chunks.push(c);
    });
    s.on('end', () => {
      const all = Buffer.concat(chunks).toString();
      if (all.startsWith('S')) late = all;
      else s.end(`got ${all}`);
    });
  });
  const c = await tcpConnect(t, port);
  c.end('Crequest');
  assert.equal((await readAll(c)).toString(), 'got Crequest');

  const d = await tcpConnect(t, port);
  d.write('S');
  const banner: Buffer[] = [];
  d.on('data', (x: Buffer) => banner.push(x));
  await once(d, 'end'); // the service's FIN reached the client, whose side is still open
  assert.equal(Buffer.concat(banner).toString(), 'banner');
  d.end('late data');
  await waitFor(() => late !== undefined, 'the service got the late data and the FIN');
  assert.equal(late, 'Slate data');
  await waitFor(() => streamsOf(gateway) === 0, 'streams gone after both FINs');
  const ended = seen.filter((e) => e.type === 'session-ended');
  assert.equal(ended.length, 2);
  assert.ok(ended.every((e) => e.type === 'session-ended' && (e.reason === 'client-closed' || e.reason === 'upstream-closed')));
});

test('a stalled reader of a 50 MiB stream: the relay holds at most the window', async (t) => {
  const total = 50 * 1024 * 1024;
  const block = Buffer.alloc(256 * 1024, 7);
  const { port, native, dp } = await expose(t, (s) => {
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += block.length;
        if (!s.write(block)) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  });
  const c = await tcpConnect(t, port);
  c.pause();
  const until = Date.now() + 2000;
  let maxHeld = 0;
  while (Date.now() < until) {
    if (native) maxHeld = Math.max(maxHeld, (dp as NativeStreamDatapath).relayedHeldBytes);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(c.readableLength < total / 4, 'the stalled client was not sent everything');
  // The client socket filled: the engine held bytes, never more than the stream's window.
  if (native) assert.ok(maxHeld > 0 && maxHeld <= DEFAULT_STREAM_WINDOW_BYTES, `held ${maxHeld} bytes (window ${DEFAULT_STREAM_WINDOW_BYTES})`);
  let got = 0;
  let wrong = 0;
  c.on('data', (d: Buffer) => {
    got += d.length;
    if (d[0] !== 7 || d[d.length - 1] !== 7) wrong++;
  });
  c.resume();
  await once(c, 'end');
  assert.equal(got, total);
  assert.equal(wrong, 0);
});

test('a reset from either end reaches the other: native as a reset, js as a close', async (t) => {
  const services: net.Socket[] = [];
  const { port, gateway, native } = await expose(t, (s) => {
    services.push(s);
    s.on('data', () => s.write('ok'));
  });
  const endOf = (s: net.Socket) =>
    new Promise<string>((resolve) => {
      s.on('error', (e: Error & { code?: string }) => resolve(e.code ?? 'error'));
      s.on('end', () => resolve('FIN'));
      s.on('close', () => resolve('closed'));
    });
  // The client resets: the service's connection ends.
  const a = await tcpConnect(t, port);
  a.write('hi');
  await once(a, 'data');
  const svcA = endOf(services[0]!);
  a.resetAndDestroy();
  assert.equal(await svcA, native ? 'ECONNRESET' : 'FIN');
  // The service resets: the client's connection ends.
  const b = await tcpConnect(t, port);
  b.write('hi');
  await once(b, 'data');
  const clientB = endOf(b);
  services[1]!.resetAndDestroy();
  assert.equal(await clientB, native ? 'ECONNRESET' : 'FIN');
  await waitFor(() => streamsOf(gateway) === 0, 'streams gone');
});

test('a refused local dial resets the stream with refused: the client is closed, no session', async (t) => {
  const gwDead = await expose(t, await refusedPort(t));
  const c = await tcpConnect(t, gwDead.port);
  c.resume();
  await once(c, 'end');
  const err = gwDead.seen.find((e) => e.type === 'dial-error');
  assert.ok(err && err.type === 'dial-error');
  assert.match(err.message, /refused/);
  assert.ok(!gwDead.seen.some((e) => e.type === 'session-started'), 'no session started');
});

test('a client whose first bytes left before the refused dial is reset, not closed', async (t) => {
  const { port, seen } = await expose(t, await freePort());
  const c = await tcpConnect(t, port);
  let error: (Error & { code?: string }) | undefined;
  c.on('error', (e) => (error = e));
  let fin = false;
  c.on('end', () => (fin = true));
  c.write('request that reaches no service');
  c.resume();
  await new Promise((r) => c.once('close', r));
  assert.equal(error?.code, 'ECONNRESET');
  assert.equal(fin, false, 'a FIN would look like the service closing after the request');
  assert.ok(seen.some((e) => e.type === 'dial-error'));
});

test('a local dial that times out resets the stream with timeout', async (t) => {
  // A listener that never accepts, its queue full: the next SYN goes unanswered.
  const child = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => child.kill());
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const full = Number(line.toString().trim());
  for (let i = 0; i < 3; i++) {
    const f = net.connect(full, '127.0.0.1');
    f.on('error', () => {});
    t.after(() => f.destroy());
  }
  const { port, seen } = await expose(t, full, ', tcp: { connectTimeout: 300ms }');
  const c = await tcpConnect(t, port);
  c.resume();
  await once(c, 'end');
  const err = seen.find((e) => e.type === 'dial-error');
  assert.ok(err && err.type === 'dial-error');
  assert.match(err.message, /timed out/);
});

test('the idle timeout of the local side ends both ends', async (t) => {
  const services: net.Socket[] = [];
  const { port, gateway, seen } = await expose(
    t,
    (s) => {
      services.push(s);
      s.resume();
    },
    ', tcp: { idleTimeout: 300ms }',
  );
  const c = await tcpConnect(t, port);
  c.write('hello');
  c.resume();
  await waitFor(() => services.length === 1, 'service connected');
  // Ended by a FIN (js) or an RST (native: the stream was reset by the agent's side).
  const endOf = (x: net.Socket) => new Promise((r) => x.once('close', r).once('end', r));
  await Promise.all([endOf(c), endOf(services[0]!)]);
  await waitFor(() => streamsOf(gateway) === 0, 'stream gone');
  await waitFor(() => seen.some((e) => e.type === 'session-ended'), 'session recorded');
  assert.ok(services[0]!.bytesRead === 5, 'the service got the client bytes before the timeout');
});

test('2,000 churned streams leave no descriptor behind', async (t) => {
  const { port, gateway } = await expose(t, (s) => s.pipe(s));
  const warm = await tcpConnect(t, port);
  warm.end('w');
  await readAll(warm);
  await waitFor(() => streamsOf(gateway) === 0, 'warm-up stream gone');
  const before = readdirSync('/proc/self/fd').length;
  for (let round = 0; round < 40; round++) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const c = net.connect(port, '127.0.0.1');
        await once(c, 'connect');
        c.end('ping');
        const got = await readAll(c);
        assert.equal(got.toString(), 'ping');
      }),
    );
  }
  await waitFor(() => streamsOf(gateway) === 0, 'every stream gone', 10_000);
  await waitFor(() => readdirSync('/proc/self/fd').length <= before, `descriptors back to ${before} (now ${readdirSync('/proc/self/fd').length})`, 5000);
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { startNode } from '../../src/root/start-node.js';
import { isSluiceError } from '../../src/core/errors.js';
import { systemClock } from '../../src/core/clock.js';
import { config } from '../helpers/node.js';
import { freePort } from '../helpers/net.js';
import { ManualClock } from '../helpers/manual-clock.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logDestination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logDestination };
}

/** True when `port` can be bound again on 127.0.0.1 with `kind` (closed again at once). */
async function bindable(kind: 'tcp' | 'udp', port: number): Promise<boolean> {
  if (kind === 'tcp') {
    return new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  }
  return new Promise<boolean>((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A TCP port held by another listener for the test's duration. */
async function heldPort(t: TestContext): Promise<number> {
  const holder = net.createServer();
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.after(() => holder.close());
  return (holder.address() as net.AddressInfo).port;
}

const routesYaml = (tcpPort: number, udpPort: number, extra: string) => `
accessLog: { output: 'off' }
routes:
  web:
    listen: tcp://127.0.0.1:${tcpPort}
    upstream: 127.0.0.1:9
  game:
    listen: udp://127.0.0.1:${udpPort}
    upstream: 127.0.0.1:9
${extra}
lifecycle: { drainTimeout: 5s }
`;

test('a part that fails late (the admin listener) unwinds exactly what was built: route ports are free again', async (t) => {
  const adminPort = await heldPort(t);
  const [tcpPort, udpPort] = [await freePort('tcp'), await freePort('udp')];
  const { lines, logDestination } = capture();

  await assert.rejects(
    startNode(config(routesYaml(tcpPort, udpPort, `admin: { listen: 127.0.0.1:${adminPort} }`)), { clock: systemClock, logDestination }),
    (err) => isSluiceError(err, 'SLUICE_ERR_BIND'),
  );
  // Both routes had come up before the admin listener failed, and both went down again.
  const said = (msg: string) => lines.filter((l) => l.msg === msg).map((l) => l.route).sort();
  assert.deepEqual(said('route up'), ['game', 'web']);
  assert.deepEqual(said('route down'), ['game', 'web']);
  assert.equal(lines.filter((l) => l.msg === 'admin listening').length, 0);
  assert.equal(await bindable('tcp', tcpPort), true);
  assert.equal(await bindable('udp', udpPort), true);
});

test('a failed start does not close what it never built: a bind failure of a route leaves the admin port unbound and nothing running', async (t) => {
  const busy = await heldPort(t);
  const [udpPort, adminPort] = [await freePort('udp'), await freePort('tcp')];
  const { lines, logDestination } = capture();
  await assert.rejects(
    startNode(config(routesYaml(busy, udpPort, `admin: { listen: 127.0.0.1:${adminPort} }`)), { clock: systemClock, logDestination }),
    (err) => isSluiceError(err, 'SLUICE_ERR_BIND'),
  );
  // The route set closed its own bound route; the admin listener, built after the routes, never bound.
  assert.equal(lines.filter((l) => l.msg === 'admin listening').length, 0);
  // The UDP route may have bound before the TCP one failed; the route set closed it again (port free below).
  assert.equal(await bindable('udp', udpPort), true);
  assert.equal(await bindable('tcp', adminPort), true);
});

test('aborting the signal stops the node at once: live sessions end with shutdown, ports are free', async () => {
  const upstream = net.createServer((s) => s.resume());
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const up = (upstream.address() as net.AddressInfo).port;
  const [tcpPort, udpPort] = [await freePort('tcp'), await freePort('udp')];
  const ac = new AbortController();
  const { logDestination } = capture();
  const node = await startNode(config(routesYaml(tcpPort, udpPort, '').replace('upstream: 127.0.0.1:9', `upstream: 127.0.0.1:${up}`)), { clock: systemClock, logDestination }, ac.signal);
  const ended: string[] = [];
  let started!: () => void;
  const sessionStarted = new Promise<void>((resolve) => (started = resolve));
  node.events.subscribe((e) => {
    if (e.type === 'session-started') started();
    if (e.type === 'session-ended') ended.push(e.reason);
  });
  const client = net.connect(tcpPort, '127.0.0.1');
  await once(client, 'connect');
  client.on('error', () => {});
  await sessionStarted;
  // A graceful stop would drain for up to 5 s; the abort cuts it short.
  const stopping = node.stop();
  ac.abort();
  await stopping;
  assert.deepEqual(ended, ['shutdown']);
  assert.equal(await bindable('tcp', tcpPort), true);
  assert.equal(await bindable('udp', udpPort), true);
  client.destroy();
  upstream.close();
});

test('await using: the node stops gracefully at the end of the scope', async () => {
  const [tcpPort, udpPort] = [await freePort('tcp'), await freePort('udp')];
  {
    await using node = await startNode(config(routesYaml(tcpPort, udpPort, '')), { clock: systemClock, logDestination: capture().logDestination });
    assert.equal(node.routes.route('web')!.local.port, tcpPort);
    assert.equal(await bindable('tcp', tcpPort), false);
  }
  assert.equal(await bindable('tcp', tcpPort), true);
  assert.equal(await bindable('udp', udpPort), true);
});

test('a node watches the young generation: a grown one is given back once quiet, and the watch ends with the node', async () => {
  const clock = new ManualClock();
  const MB = 1024 * 1024;
  const heap = {
    reduced: 0,
    read(out: Float64Array) {
      out[0] = 32 * MB;
      out[1] = 2 * MB;
    },
    reduce() {
      heap.reduced++;
    },
    busy: () => 0,
  };
  const [tcpPort, udpPort] = [await freePort('tcp'), await freePort('udp')];
  const node = await startNode(config(routesYaml(tcpPort, udpPort, '')), { clock, logDestination: capture().logDestination, youngGeneration: heap });
  clock.advance(3000);
  assert.equal(heap.reduced, 1);
  await node.stop();
  clock.advance(60_000);
  assert.equal(heap.reduced, 1, 'no request after the node stopped');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { formatProblem } from '../../src/discovery/problems.js';
import { freePort, readAll, sleep, tcpConnect, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { FakeEngine } from './support/fake-engine.js';
import { container } from './support/fixtures.js';
import { startWithContainers } from './support/harness.js';

const DOCKER = 'docker: { socket: "unix:///nonexistent/engine.sock", reconnect: { min: 10ms, max: 80ms } }';
const FILE = `${DOCKER}\nlifecycle: { drainTimeout: 400ms }\nroutes: {}\n`;

function echoRoutes(udpPort: number, tcpPort: number) {
  const dns = container({
    name: 'dns-echo',
    labels: { 'sluice.routes.dns.listen': 'udp://127.0.0.1:0', 'sluice.routes.dns.upstream': `:${udpPort}` },
  });
  const ssh = container({ name: 'ssh-echo', labels: { 'proxy.ssh.scheme': 'tcp', 'proxy.ssh.port': `0:${tcpPort}`, 'proxy.ssh.bind': '127.0.0.1' } });
  return { dns, ssh };
}

test('label routes appear with their origin and serve; stopping one drains it while the other keeps serving', async (t) => {
  const [udp, tcp] = [await udpEcho(t), await tcpServer(t)];
  const engine = new FakeEngine();
  const { dns, ssh } = echoRoutes(udp.port, tcp.port);
  engine.run(dns); // running before discovery starts: found by the first list
  const s = await startWithContainers(t, FILE, engine);
  engine.run(ssh); // may land before or after the first list: either way exactly once
  await waitFor(() => s.node.route('dns') !== undefined && s.node.route('ssh') !== undefined, 'both label routes');

  const ups = s.ofType('route-up');
  assert.deepEqual(ups.map((e) => [e.route, e.origin?.container, e.origin?.labels]).sort(), [['dns', 'dns-echo', 'sluice'], ['ssh', 'ssh-echo', 'godoxy']]);
  assert.equal(s.node.route('dns')!.config.origin!.containerId, dns.id);
  assert.deepEqual(s.routes.status().routes.map((r) => r.name).sort(), ['dns', 'ssh']);

  const client = await udpClient(t);
  client.send(s.port('dns'), 'ping');
  assert.equal((await client.next()).toString(), 'ping');
  const kept = await tcpConnect(t, s.port('ssh'));
  kept.write('one');
  await once(kept, 'data');

  engine.stop(dns.id);
  await waitFor(() => s.node.route('dns') === undefined, 'dns removed');
  assert.equal(s.node.route('ssh')?.config.origin?.container, 'ssh-echo');
  // The removed route drains: its live session ends with route-removed once drainTimeout passes.
  await waitFor(() => s.ofType('session-ended').some((e) => e.flow.route === 'dns' && e.reason === 'route-removed'), 'dns session drained', 3000);
  await waitFor(() => s.ofType('route-down').some((e) => e.route === 'dns'), 'dns route down');
  // The other route kept its socket and its live connection.
  kept.end('two');
  assert.equal((await readAll(kept)).toString(), 'two');
  const fresh = await tcpConnect(t, s.port('ssh'));
  fresh.end('three');
  assert.equal((await readAll(fresh)).toString(), 'three');
  assert.ok(s.lines.some((l) => l.msg === 'route from container labels removed (its sessions drain)' && l.fields.route === 'dns'));
});

test("Podman's event names remove routes too", async (t) => {
  const engine = new FakeEngine({ die: ['died'], remove: 'remove' });
  const s = await startWithContainers(t, FILE, engine);
  const c = engine.run(container({ labels: { 'sluice.routes.p.listen': 'udp://127.0.0.1:0', 'sluice.routes.p.upstream': ':9' } }));
  await waitFor(() => s.node.route('p') !== undefined, 'route p');
  engine.stop(c.id);
  await waitFor(() => s.node.route('p') === undefined, 'route p removed on died');
  engine.run(c);
  await waitFor(() => s.node.route('p') !== undefined, 'route p back on start');
  engine.remove(c.id);
  await waitFor(() => s.node.route('p') === undefined, 'route p removed on remove');
});

test('a bad label is reported (log, status) and skips only its route', async (t) => {
  const engine = new FakeEngine();
  const c = engine.run(
    container({
      name: 'broken',
      labels: {
        'sluice.routes.good.listen': 'tcp://127.0.0.1:0',
        'sluice.routes.good.upstream': ':9',
        'sluice.routes.bad.listen': 'tcp://127.0.0.1:0',
        'sluice.routes.bad.upstream': ':9',
        'sluice.routes.bad.tcp.maxConections': '5',
      },
    }),
  );
  const s = await startWithContainers(t, FILE, engine);
  await waitFor(() => s.node.route('good') !== undefined, 'good route');
  await waitFor(() => s.routes.problems().length > 0, 'problem listed');
  const line = `container broken (${c.id.slice(0, 12)}) label sluice.routes.bad.tcp.maxConections: unknown key "maxConections" (did you mean "maxConnections"?)`;
  assert.deepEqual(s.routes.problems().map(formatProblem), [line]);
  assert.equal(s.node.route('bad'), undefined);
  assert.equal(s.lines.filter((l) => l.level === 'error' && l.msg === line).length, 1, 'logged once');
  // Another event for the same container does not log it again.
  engine.emit('update', c.id);
  await sleep(50);
  assert.equal(s.lines.filter((l) => l.msg === line).length, 1);
  assert.equal(s.routes.status().problems[0]!.label, 'sluice.routes.bad.tcp.maxConections');
});

test('the config file wins conflicts, and a reload hands names and addresses over both ways', async (t) => {
  const [p1, p2] = [await freePort(), await freePort()];
  const file = (withWeb: boolean) =>
    `${DOCKER}\nlifecycle: { drainTimeout: 200ms }\nroutes:\n${withWeb ? `  web: { listen: "tcp://127.0.0.1:${p1}", upstream: "127.0.0.1:9" }\n` : '  other: { listen: "tcp://127.0.0.1:0", upstream: "127.0.0.1:9" }\n'}`;
  const engine = new FakeEngine();
  engine.run(
    container({
      name: 'app',
      labels: {
        'sluice.routes.web.listen': `tcp://127.0.0.1:${p2}`,
        'sluice.routes.web.upstream': ':9',
        'sluice.routes.api.listen': `tcp://127.0.0.1:${p1}`,
        'sluice.routes.api.upstream': ':9',
      },
    }),
  );
  const s = await startWithContainers(t, file(true), engine);
  await waitFor(() => s.routes.problems().length === 2, 'two conflicts');
  assert.deepEqual(s.routes.problems().map((p) => [p.kind, p.route, p.message]).sort(), [
    ['conflict', 'api', `tcp://127.0.0.1:${p1} is already the listen address of route "web" (the config file)`],
    ['conflict', 'web', 'route name "web" is already used by the config file'],
  ]);
  assert.equal(s.node.route('web')!.config.origin, undefined);

  await s.reloadFile(file(false));
  // The label route binds p1 before the file's route on it has drained, so it waits for a bind retry
  // (1 s, 2 s, 4 s, ...); under a loaded CI run that can take several retries.
  await waitFor(() => s.node.route('api') !== undefined && s.node.route('web')?.config.origin !== undefined, 'label routes take over', 20_000);
  assert.equal(s.node.route('web')!.local.port, p2);
  assert.equal(s.node.route('api')!.local.port, p1);
  await waitFor(() => s.routes.problems().length === 0, 'no problem left', 20_000);

  await s.reloadFile(file(true));
  assert.equal(s.node.route('web')!.config.origin, undefined, 'the file took its name back');
  assert.equal(s.node.route('web')!.local.port, p1, 'and its address');
  assert.equal(s.node.route('api'), undefined);
  assert.equal(s.routes.problems().length, 2);
});

test('a lost engine keeps the routes; the reconnect resynchronises without duplicates or leaks', async (t) => {
  const engine = new FakeEngine();
  const a = engine.run(container({ name: 'a', labels: { 'sluice.routes.a.listen': 'udp://127.0.0.1:0', 'sluice.routes.a.upstream': ':9' } }));
  const b = engine.run(container({ name: 'b', labels: { 'sluice.routes.b.listen': 'udp://127.0.0.1:0', 'sluice.routes.b.upstream': ':9' } }));
  const s = await startWithContainers(t, FILE, engine);
  await waitFor(() => s.node.route('a') !== undefined && s.node.route('b') !== undefined, 'a and b');
  const portB = s.port('b');

  for (let round = 0; round < 3; round++) {
    engine.down();
    await waitFor(() => s.routes.status().engine.state === 'disconnected', 'disconnected');
    await sleep(60); // a few failed reconnects
    assert.ok(s.node.route('a') && s.node.route('b'), 'routes stay while the engine is away');
    engine.up();
    await waitFor(() => s.routes.status().engine.state === 'connected', 'reconnected');
  }
  // While away: a went, c came (no events seen for either).
  engine.down();
  engine.containers.delete(a.id);
  const c = container({ name: 'c', labels: { 'sluice.routes.c.listen': 'udp://127.0.0.1:0', 'sluice.routes.c.upstream': ':9' } });
  engine.containers.set(c.id, c);
  engine.up();
  await waitFor(() => s.node.route('c') !== undefined && s.node.route('a') === undefined, 'resynchronised');
  assert.equal(s.port('b'), portB, 'b kept its socket throughout');
  const ups = s.ofType('route-up').map((e) => e.route);
  assert.deepEqual(ups.filter((r) => r === 'b'), ['b'], 'b came up once');
  assert.deepEqual(ups.filter((r) => r === 'c'), ['c']);
  assert.equal(engine.subscribers, 1, 'one event stream, none leaked');
  assert.ok(s.lines.filter((l) => l.level === 'warn').length >= 1, 'the loss is logged');
  assert.equal(s.routes.status().containers, 2);
  void b;
});

test('a listener that cannot bind is skipped with a problem, the others run, and it is retried', async (t) => {
  const blocker = dgram.createSocket('udp4');
  blocker.bind(0, '127.0.0.1');
  await once(blocker, 'listening');
  const taken = blocker.address().port;
  const engine = new FakeEngine();
  engine.run(container({ name: 'x', labels: { 'sluice.routes.x.listen': `udp://127.0.0.1:${taken}`, 'sluice.routes.x.upstream': ':9' } }));
  engine.run(container({ name: 'y', labels: { 'sluice.routes.y.listen': 'udp://127.0.0.1:0', 'sluice.routes.y.upstream': ':9' } }));
  const s = await startWithContainers(t, FILE, engine);
  await waitFor(() => s.node.route('y') !== undefined, 'y runs');
  await waitFor(() => s.routes.problems().some((p) => p.kind === 'bind' && p.route === 'x'), 'x reported');
  assert.equal(s.node.route('x'), undefined);
  blocker.close();
  await waitFor(() => s.node.route('x') !== undefined, 'x bound on retry', 4000);
  assert.equal(s.node.route('x')!.local.port, taken);
  await waitFor(() => s.routes.problems().length === 0, 'problem cleared');
});

test('a restarted container gets its UDP route back once the old listener has drained', async (t) => {
  const udp = await udpEcho(t);
  const engine = new FakeEngine();
  const listen = await freePort('udp');
  const c = engine.run(container({ name: 'dns', labels: { 'sluice.routes.dns.listen': `udp://127.0.0.1:${listen}`, 'sluice.routes.dns.upstream': `:${udp.port}` } }));
  const s = await startWithContainers(t, FILE, engine);
  await waitFor(() => s.node.route('dns') !== undefined, 'dns');
  const client = await udpClient(t);
  client.send(listen, 'a');
  assert.equal((await client.next()).toString(), 'a');
  engine.stop(c.id);
  engine.run(c); // docker restart: die, stop, start
  // The live session keeps flowing through the draining listener meanwhile.
  client.send(listen, 'b');
  assert.equal((await client.next()).toString(), 'b');
  await waitFor(() => s.ofType('route-up').filter((e) => e.route === 'dns').length === 2, 'dns bound again', 5000);
  const fresh = await udpClient(t);
  fresh.send(listen, 'c');
  assert.equal((await fresh.next()).toString(), 'c');
  await waitFor(() => s.routes.problems().length === 0, 'no problem left');
});

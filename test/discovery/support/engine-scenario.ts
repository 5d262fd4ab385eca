import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { startNode as startRunningNode } from '../../../src/root/start-node.js';
import { expectConfig, loadConfigFile } from '../../../src/config/load.js';
import { systemClock } from '../../../src/core/clock.js';
import { formatProblem } from '../../../src/discovery/problems.js';
import { checkContainers } from '../../../src/discovery/check.js';
import type { SluiceEvent } from '../../../src/observe/events.js';
import { freePort, sleep, waitFor } from '../../helpers/net.js';
import { engineOrSkip, type EngineKind } from './real-engine.js';

/** pino's JSON lines, parsed. */
function logCollector() {
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      partial += chunk.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* not JSON */
        }
      }
      done();
    },
  });
  return { stream, lines };
}

/** One UDP exchange through `port`, retried while the container's echo is still starting. */
async function udpRoundTrip(t: TestContext, port: number, payload: string): Promise<string> {
  const sock = dgram.createSocket('udp4');
  t.after(() => sock.close());
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  for (let i = 0; i < 50; i++) {
    sock.send(payload, port, '127.0.0.1');
    const reply = await Promise.race([once(sock, 'message').then(([m]) => (m as Buffer).toString()), sleep(200).then(() => undefined)]);
    if (reply !== undefined) return reply;
  }
  throw new Error(`no UDP echo through port ${port}`);
}

/** A TCP connection through `port` whose first echo came back (retried while the echo starts). */
async function tcpEchoConnection(t: TestContext, port: number): Promise<net.Socket> {
  for (let i = 0; i < 50; i++) {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.on('error', () => {});
    t.after(() => s.destroy());
    const ok = await new Promise<boolean>((resolve) => {
      s.once('data', (d: Buffer) => resolve(d.toString() === 'hello'));
      s.once('close', () => resolve(false));
      s.once('connect', () => s.write('hello'));
    });
    if (ok) return s;
    s.destroy();
    await sleep(200);
  }
  throw new Error(`no TCP echo through port ${port}`);
}

async function echo(s: net.Socket, text: string): Promise<string> {
  s.write(text);
  const [d] = (await once(s, 'data')) as [Buffer];
  return d.toString();
}

/**
 * Issue 9 on a real engine: a labelled UDP echo container and a GoDoxy-labelled TCP echo
 * container become reachable through Sluice; stopping one removes its route and drains its
 * session while the other keeps serving; a container with a bad label is reported and skipped;
 * the engine restarts (containers live on) and Sluice reconnects and resynchronises: a container
 * that died meanwhile loses its route, the others are not touched (their live connection
 * survives, no route comes up twice).
 */
export async function containerRoutesOnRealEngine(t: TestContext, kind: EngineKind): Promise<void> {
  const engine = await engineOrSkip(t, kind);
  if (!engine) return;
  const [udpPort, tcpPort, sparePort, sshListen] = [await freePort('udp'), await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync('/tmp/sluice-containers-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'sluice.yaml');
  writeFileSync(
    configPath,
    [
      'docker:',
      `  socket: unix://${engine.socketPath}`,
      '  godoxy: { bind: 127.0.0.1 }',
      '  reconnect: { min: 100ms, max: 1s }',
      'lifecycle: { drainTimeout: 1s }',
      'accessLog: { output: off }',
      'log: { level: debug }',
      'routes:',
      `  file-tcp: { listen: "tcp://127.0.0.1:0", upstream: "127.0.0.1:${tcpPort}" }`,
      '',
    ].join('\n'),
  );

  // Running before Sluice starts: found by the first list.
  await engine.run('udp-echo', ['/bin/echo-server', 'udp', String(udpPort)], {
    'sluice.routes.dns.listen': 'udp://127.0.0.1:0',
    'sluice.routes.dns.upstream': `:${udpPort}`,
    'sluice.routes.dns.udp.idleTimeout': '1m',
  });
  const badId = await engine.run('bad-label', ['/bin/sleep', '3600'], { 'sluice.routes.bad.listen': 'udp://nowhere:53', 'sluice.routes.bad.upstream': ':53' });

  const logs = logCollector();
  const app = await startRunningNode(expectConfig(await loadConfigFile(configPath)), { configPath, clock: systemClock, logDestination: logs.stream });
  t.after(() => app.stop());
  const events: SluiceEvent[] = [];
  app.events.subscribe((e) => events.push(e));
  const containers = app.containers!;
  assert.ok(containers, 'docker: starts discovery');

  // Started after Sluice: found by the event stream.
  const tcpId = await engine.run('tcp-echo', ['/bin/echo-server', 'tcp', String(tcpPort)], { 'proxy.aliases': 'ssh', 'proxy.#1.port': `${sshListen}:${tcpPort}` });
  await engine.run('spare', ['/bin/echo-server', 'tcp', String(sparePort)], { 'sluice.routes.spare.listen': 'tcp://127.0.0.1:0', 'sluice.routes.spare.upstream': `:${sparePort}` });
  await waitFor(() => ['dns', 'ssh', 'spare'].every((n) => app.routes.route(n) !== undefined), 'routes from the three containers', 20_000);

  const ssh = app.routes.route('ssh')!;
  assert.deepEqual(ssh.config.origin, { kind: 'container', container: 'tcp-echo', containerId: tcpId, labels: 'godoxy' });
  assert.equal(ssh.local.port, sshListen, 'GoDoxy LISTEN:TARGET');
  assert.equal(app.routes.route('dns')!.config.origin?.container, 'udp-echo');
  assert.equal(app.routes.route('file-tcp')!.config.origin, undefined);
  assert.ok(events.some((e) => e.type === 'route-up' && e.route === 'ssh' && e.origin?.containerId === tcpId), 'route-up carries the origin');

  // The bad label: reported (problems, log) and skipped.
  await waitFor(() => containers.problems().length > 0, 'the bad label reported');
  const problem = `container bad-label (${badId.slice(0, 12)}) label sluice.routes.bad.listen: listen host must be an IP address, got "nowhere"`;
  assert.deepEqual(containers.problems().map(formatProblem), [problem]);
  assert.equal(app.routes.route('bad'), undefined);
  assert.ok(logs.lines.some((l) => l.msg === problem && l.level === 50), 'logged as an error');
  assert.equal(containers.status().engine.name, kind);
  // The same, one-off, as a check command would print it.
  const check = await checkContainers(app.routes.config as Parameters<typeof checkContainers>[0], AbortSignal.timeout(10_000));
  assert.deepEqual(check.problems.map(formatProblem), [problem]);
  assert.deepEqual(check.routes.map((r) => r.name).sort(), ['dns', 'spare', 'ssh']);
  assert.ok(check.lines.includes(`container tcp-echo (${tcpId.slice(0, 12)}) route "ssh": tcp://127.0.0.1:${sshListen} -> 127.0.0.1:${tcpPort}`));

  // Both reachable through Sluice.
  assert.equal(await udpRoundTrip(t, app.routes.route('dns')!.local.port, 'ping'), 'ping');
  const kept = await tcpEchoConnection(t, sshListen);
  assert.equal(await echo(kept, 'one'), 'one');

  // Stopping the UDP container removes its route and drains its session; TCP keeps serving.
  await engine.stop('udp-echo');
  await waitFor(() => app.routes.route('dns') === undefined, 'dns removed', 10_000);
  await waitFor(() => events.some((e) => e.type === 'session-ended' && e.flow.route === 'dns' && e.reason === 'route-removed'), 'dns session drained', 10_000);
  assert.equal(await echo(kept, 'two'), 'two');

  // The engine restarts; the spare container dies while it is away.
  const sparePid = await engine.pid('spare');
  await engine.restart(async () => {
    await waitFor(() => containers.status().engine.state === 'disconnected', 'engine loss noticed', 10_000);
    assert.ok(app.routes.route('ssh') && app.routes.route('spare'), 'routes stay while the engine is away');
    process.kill(sparePid, 'SIGKILL');
  });
  await waitFor(() => containers.status().engine.state === 'connected' && app.routes.route('spare') === undefined, 'resynchronised after the restart', 30_000);
  assert.equal(await echo(kept, 'three'), 'three', 'the untouched route kept its live connection');
  assert.deepEqual(app.routes.routes().map((r) => r.name).sort(), ['file-tcp', 'ssh']);
  assert.equal(events.filter((e) => e.type === 'route-up' && e.route === 'ssh').length, 1, 'no duplicate route');
  assert.deepEqual(containers.problems().map(formatProblem), [problem], 'still reported after the resync, once');
  assert.equal(logs.lines.filter((l) => l.msg === 'container engine connected').length, 2);
  kept.end();
}

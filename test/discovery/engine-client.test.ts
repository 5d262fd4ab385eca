import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { isSluiceError } from '../../src/core/errors.js';
import { UnixSocketEngine, type EngineEvent } from '../../src/discovery/engine-client.js';
import { waitFor } from '../helpers/net.js';

/** An HTTP server on a unix socket standing in for an engine; `handle` answers each request. */
async function scriptedEngine(t: TestContext, handle: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const dir = mkdtempSync('/tmp/sluice-engine-');
  const socketPath = join(dir, 'engine.sock');
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    handle(req, res);
  });
  server.listen(socketPath);
  await once(server, 'listening');
  t.after(() => {
    for (const r of open) r.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { socketPath, open, server };
}

const summary = (id: string, over: Record<string, unknown> = {}) => ({
  Id: id,
  Names: [`/${id.slice(0, 4)}`],
  Labels: { 'sluice.routes.a.listen': 'udp://0.0.0.0:1' },
  State: 'running',
  Created: 1,
  HostConfig: { NetworkMode: 'host' },
  NetworkSettings: { Networks: { host: { IPAddress: '' } } },
  Ports: [],
  ...over,
});

test('lists running containers, reads one by id, and names the engine', async (t) => {
  const seen: string[] = [];
  const e = await scriptedEngine(t, (req, res) => {
    seen.push(req.url!);
    if (req.url === '/version') return res.end(JSON.stringify({ Version: '4.3.1', ApiVersion: '1.41', Components: [{ Name: 'Podman Engine' }] }));
    if (req.url === '/containers/json') return res.end(JSON.stringify([summary('aaaa1'), summary('bbbb2', { State: 'paused' }), { nonsense: true }]));
    if (req.url!.startsWith('/containers/json?filters=')) {
      // The id filter matches prefixes: the exact id is picked out.
      return res.end(JSON.stringify([summary('cccc3x'), summary('cccc3')]));
    }
    res.statusCode = 404;
    res.end('{"message":"no"}');
  });
  const engine = new UnixSocketEngine(e.socketPath);
  const signal = new AbortController().signal;
  assert.deepEqual(await engine.identify(signal), { engine: 'podman', version: '4.3.1', apiVersion: '1.41' });
  const list = await engine.listRunning(signal);
  assert.deepEqual(list.map((c) => [c.id, c.name, c.hostNetwork]), [['aaaa1', 'aaaa', true]]);
  const one = await engine.runningContainer('cccc3', signal);
  assert.equal(one?.id, 'cccc3');
  assert.equal(decodeURIComponent(seen.at(-1)!), '/containers/json?filters={"id":["cccc3"]}');
});

test('an unreachable socket and an HTTP error are SLUICE_ERR_ENGINE with the reason', async (t) => {
  const missing = new UnixSocketEngine('/nonexistent/engine.sock');
  await assert.rejects(missing.listRunning(new AbortController().signal), (err) => isSluiceError(err, 'SLUICE_ERR_ENGINE') && /ENOENT/.test(err.message));
  const e = await scriptedEngine(t, (_req, res) => {
    res.statusCode = 500;
    res.end('{"message":"boom"}');
  });
  await assert.rejects(new UnixSocketEngine(e.socketPath).listRunning(new AbortController().signal), (err) =>
    isSluiceError(err, 'SLUICE_ERR_ENGINE') && /HTTP 500 .*boom/.test(err.message),
  );
});

test('the event stream: split across chunks, both field spellings, non-container events skipped, end reported', async (t) => {
  let stream: http.ServerResponse | undefined;
  const e = await scriptedEngine(t, (req, res) => {
    assert.equal(decodeURIComponent(req.url!), '/events?filters={"type":["container"]}');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    stream = res;
  });
  const events: EngineEvent[] = [];
  const ac = new AbortController();
  const sub = await new UnixSocketEngine(e.socketPath).subscribe(ac.signal, (ev) => events.push(ev));
  stream!.write('{"Type":"container","Action":"start","Actor":{"ID":"id1","Attributes":{"name":"a"}}}\n{"Type":"container","Act');
  stream!.write('ion":"die","Actor":{"ID":"id1"}}\n');
  stream!.write('{"Type":"network","Action":"connect","Actor":{"ID":"n1"}}\n');
  stream!.write('{"status":"died","id":"id2"}\n{"Type":"container","Action":"exec_start: sh -c true","Actor":{"ID":"id3"}}\nnot json\n\n');
  await waitFor(() => events.length === 4, 'four events');
  assert.deepEqual(events, [
    { action: 'start', id: 'id1' },
    { action: 'die', id: 'id1' },
    { action: 'died', id: 'id2' },
    { action: 'exec_start', id: 'id3' },
  ]);
  stream!.destroy(); // the engine goes away
  await sub.ended;

  const again = await new UnixSocketEngine(e.socketPath).subscribe(ac.signal, () => {});
  ac.abort(); // closing discovery ends the stream too
  await again.ended;
  await waitFor(() => e.open.size === 0, 'no response left open');
});

test("Podman's list without networking: labelled containers are inspected, others are not, a vanished one is dropped", async (t) => {
  const inspected: string[] = [];
  const podmanSummary = (id: string, labels: Record<string, string>) => ({ Id: id, Names: [`/${id}`], Labels: labels, State: 'running', NetworkSettings: { Networks: null }, Ports: [] });
  const e = await scriptedEngine(t, (req, res) => {
    if (req.url === '/containers/json') {
      return res.end(JSON.stringify([podmanSummary('host1', { 'proxy.a.port': '1:1' }), podmanSummary('bridged', { 'sluice.routes.b.listen': 'x' }), podmanSummary('plain', {}), podmanSummary('gone', { 'proxy.g.port': '1:1' })]));
    }
    const m = /^\/containers\/(\w+)\/json$/.exec(req.url!);
    if (m) {
      inspected.push(m[1]!);
      if (m[1] === 'gone') {
        res.statusCode = 404;
        return res.end('{"message":"no such container"}');
      }
      const bridged = m[1] === 'bridged';
      return res.end(
        JSON.stringify({
          HostConfig: { NetworkMode: bridged ? 'bridge' : 'host' },
          NetworkSettings: bridged ? { Networks: { podman: { IPAddress: '10.88.0.5' } }, Ports: { '53/udp': [{ HostIp: '', HostPort: '10053' }] } } : { Networks: {}, Ports: {} },
        }),
      );
    }
    res.statusCode = 404;
    res.end('{}');
  });
  const engine = new UnixSocketEngine(e.socketPath, (labels) => Object.keys(labels).some((k) => k.startsWith('sluice.') || k.startsWith('proxy.')));
  const list = await engine.listRunning(new AbortController().signal);
  assert.deepEqual(inspected.sort(), ['bridged', 'gone', 'host1']);
  assert.deepEqual(
    list.map((c) => [c.id, c.hostNetwork, c.networks, c.ports]),
    [
      ['host1', true, {}, []],
      ['bridged', false, { podman: '10.88.0.5' }, [{ privatePort: 53, publicPort: 10053, type: 'udp', ip: undefined }]],
      ['plain', false, {}, []],
    ],
  );
});

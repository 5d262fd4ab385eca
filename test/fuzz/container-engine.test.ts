// Fuzz: what Sluice reads from a container engine: /events lines (byte-mutated and
// structure-mutated JSON), container summaries and inspect answers, and the event stream itself
// over a unix socket, cut into arbitrary chunks (fuzz.ts says how).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseEngineEvent, UnixSocketEngine, type EngineEvent } from '../../src/discovery/engine-client.js';
import { containerFromSummary, networkingFromInspect, summaryLacksNetworking } from '../../src/discovery/container.js';
import { fcSettings, fuzz, mutatedInputs, mutatedJson } from './fuzz.js';
import { waitFor } from '../helpers/net.js';

const EVENTS = [
  { Type: 'container', Action: 'start', Actor: { ID: 'id1', Attributes: { name: 'a', 'sluice.routes.a.listen': 'udp://0.0.0.0:1' } }, time: 1, timeNano: 1 },
  { Type: 'container', Action: 'exec_start: sh -c true', Actor: { ID: 'id3' } },
  { status: 'died', id: 'id2', from: 'busybox' },
  { Type: 'network', Action: 'connect', Actor: { ID: 'n1' } },
  { Type: 'container', Action: 'health_status: healthy', status: 'health_status: healthy', id: 'id4', Actor: { ID: 'id4' } },
];
const SUMMARY = {
  Id: 'aaaa1', Names: ['/web'], Labels: { 'sluice.routes.a.listen': 'udp://0.0.0.0:1' }, State: 'running', Created: 1,
  HostConfig: { NetworkMode: 'bridge' },
  NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2' }, other: { IPAddress: 'fd00::2' } } },
  Ports: [{ PrivatePort: 53, PublicPort: 5353, Type: 'udp', IP: '0.0.0.0' }, { PrivatePort: 80, Type: 'tcp' }],
};
const INSPECT = {
  Id: 'aaaa1', HostConfig: { NetworkMode: 'bridge' },
  NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2' } }, Ports: { '53/udp': [{ HostIp: '0.0.0.0', HostPort: '5353' }], '80/tcp': null } },
};
const lines = EVENTS.map((e) => Buffer.from(JSON.stringify(e)));

function checkEvent(e: EngineEvent | undefined): void {
  if (e === undefined) return;
  assert.equal(typeof e.action, 'string');
  assert.equal(typeof e.id, 'string');
  assert.ok(e.action.length > 0 && e.id.length > 0);
}

// Found by this fuzzing: a `null` line threw a TypeError inside the stream's data handler (an
// uncaught exception: the process died), and a port binding list that is not an array threw out
// of listRunning. Both are ignored now.
test('regression: a null event line and a non-array port binding list are ignored', () => {
  for (const line of ['null', '[]', '1', '{"Actor":null,"id":"x","Action":"start"}', '{"Action":5,"status":null,"Actor":{"ID":"y"}}']) {
    assert.doesNotThrow(() => parseEngineEvent(line), line);
  }
  assert.equal(parseEngineEvent('null'), undefined);
  assert.deepEqual(parseEngineEvent('{"Actor":null,"id":"x","Action":"start"}'), { action: 'start', id: 'x' });
  const n = networkingFromInspect({ NetworkSettings: { Networks: { a: null, b: { IPAddress: '10.0.0.1' } }, Ports: { '80/tcp': true, '53/udp': [null, { HostPort: '5353' }, { HostPort: '70000' }] } } });
  assert.deepEqual(n, { hostNetwork: false, networks: { b: '10.0.0.1' }, ports: [{ privatePort: 53, publicPort: 5353, type: 'udp', ip: undefined }] });
});

test('fuzz: /events lines, byte-mutated', (t) => {
  const stats = fuzz({
    inputs: mutatedInputs([...lines, Buffer.from('null'), Buffer.from('[]'), Buffer.from('"x"')], 128),
    run: (buf) => checkEvent(parseEngineEvent(buf.toString('utf8'))),
    typedError: () => false,
    numRuns: 4000,
  });
  t.diagnostic(`engine event lines (bytes): ${JSON.stringify(stats)}`);
});

test('fuzz: /events lines, structure-mutated JSON', (t) => {
  const stats = fuzz({
    inputs: fc.oneof(mutatedJson(EVENTS), fc.jsonValue({ maxDepth: 2 })),
    run: (doc) => checkEvent(parseEngineEvent(JSON.stringify(doc) ?? 'null')),
    typedError: () => false,
    numRuns: 3000,
  });
  t.diagnostic(`engine event lines (json): ${JSON.stringify(stats)}`);
});

test('fuzz: container summaries and inspect answers, structure-mutated', (t) => {
  const stats = fuzz({
    inputs: fc.oneof(mutatedJson([SUMMARY, INSPECT]), fc.jsonValue({ maxDepth: 3 })),
    run: (doc) => {
      const c = containerFromSummary(doc);
      if (c) {
        assert.equal(typeof c.id, 'string');
        for (const p of c.ports) assert.ok(Number.isFinite(p.privatePort) && Number.isFinite(p.publicPort));
      }
      summaryLacksNetworking(doc);
      const n = networkingFromInspect(doc);
      for (const p of n.ports) assert.ok(Number.isInteger(p.publicPort) && p.publicPort > 0);
    },
    typedError: () => false,
    numRuns: 4000,
  });
  t.diagnostic(`container summaries/inspect: ${JSON.stringify(stats)}`);
});

test('fuzz: the event stream over a unix socket, mutated lines in arbitrary chunks, never throws', async (t) => {
  const { seed } = fcSettings(0);
  const sample = fc.sample(
    fc.tuple(fc.array(fc.oneof(mutatedInputs(lines, 64), mutatedJson(EVENTS).map((d) => Buffer.from(JSON.stringify(d)))), { minLength: 400, maxLength: 400 }), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 50, maxLength: 50 })),
    { seed, numRuns: 1 },
  )[0]!;
  const [docs, cuts] = sample;
  const stream = Buffer.concat(docs.flatMap((d) => [d, Buffer.from('\n')]));
  const dir = mkdtempSync('/tmp/sluice-fuzz-engine-');
  const socketPath = join(dir, 'engine.sock');
  let res: http.ServerResponse | undefined;
  const server = http.createServer((_req, r) => {
    r.writeHead(200, { 'content-type': 'application/json' });
    r.flushHeaders();
    res = r;
  });
  server.listen(socketPath);
  await once(server, 'listening');
  t.after(() => {
    res?.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const events: EngineEvent[] = [];
  const ac = new AbortController();
  const sub = await new UnixSocketEngine(socketPath).subscribe(ac.signal, (e) => events.push(e));
  await waitFor(() => res !== undefined, 'the stream');
  let at = 0;
  for (let i = 0; at < stream.length; i++) {
    const n = cuts[i % cuts.length]!;
    res!.write(stream.subarray(at, at + n));
    at += n;
  }
  // A line of `null` (which once killed the process from the data handler), then a well-formed
  // event last: once it is in, everything before it was read.
  res!.write('null\n');
  res!.write('{"Type":"container","Action":"stop","Actor":{"ID":"last"}}\n');
  await waitFor(() => events.at(-1)?.id === 'last', 'the final event', 10_000);
  events.forEach(checkEvent);
  t.diagnostic(`engine event stream: ${docs.length} lines in ${stream.length} bytes, ${events.length} events`);
  ac.abort();
  await sub.ended;
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessLogSink } from '../../src/observe/access-log.js';
import { newInstanceId } from '../../src/observe/flow-id.js';
import type { LineWriter } from '../../src/observe/line-writer.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { startNode } from '../helpers/node.js';
import { udpClient, udpEcho, waitFor } from '../helpers/net.js';

function memoryWriter(): LineWriter & { lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  return {
    write: (l) => void out.push(l),
    close: async () => {},
    lines: () => out.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('access log: one start and one end line per session, with the schema of docs/access-log.md', async (t) => {
  const clock = new ManualClock();
  const echo = await udpEcho(t);
  const n = await startNode(t, `
routes:
  dns:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    udp: { idleTimeout: 5s }
`, { clock });
  const out = memoryWriter();
  const instanceId = newInstanceId();
  n.events.subscribe(accessLogSink(out, clock, { instanceId }));
  const c = await udpClient(t);
  c.send(n.port('dns'), 'abc');
  await c.next();
  c.send(n.port('dns'), 'defg');
  await c.next();
  clock.advance(6_000);
  await waitFor(() => out.lines().length === 2, 'two lines');
  const [start, end] = out.lines();
  // Every line names the process run: flowId restarts at 1 with each run of an appended file.
  assert.deepEqual(Object.keys(start!), ['time', 'event', 'instanceId', 'flowId', 'route', 'proto', 'clientAddr', 'clientPort', 'upstreamAddr', 'upstreamPort']);
  assert.equal(start!.event, 'start');
  assert.equal(start!.clientPort, c.port);
  assert.equal(start!.upstreamPort, echo.port);
  assert.equal(end!.event, 'end');
  assert.equal(end!.flowId, start!.flowId);
  assert.equal(start!.instanceId, instanceId);
  assert.equal(end!.instanceId, instanceId);
  assert.equal(end!.reason, 'idle-timeout');
  assert.equal(end!.bytesFromClient, 7);
  assert.equal(end!.bytesToClient, 7);
  assert.equal(end!.packetsFromClient, 2);
  assert.equal(end!.packetsToClient, 2);
  assert.equal(typeof end!.durationMs, 'number');
  assert.match(String(end!.startTime), /^\d{4}-\d\d-\d\dT/);
});

test('access log: rejections are rate-limited and the next line says how many were left out', () => {
  const clock = new ManualClock();
  const out = memoryWriter();
  const sink = accessLogSink(out, clock);
  const client = { address: '198.51.100.7', port: 4000, family: 4 as const };
  for (let i = 0; i < 100; i++) sink({ type: 'session-rejected', at: clock.wallNow(), route: 'r', proto: 'udp', client, reason: 'limit-route-rate' });
  assert.equal(out.lines().length, 40, 'the burst');
  clock.advance(1000);
  sink({ type: 'session-rejected', at: clock.wallNow(), route: 'r', proto: 'udp', client, reason: 'acl-cidr', detail: 'deny 198.51.100.0/24' });
  const last = out.lines().at(-1)!;
  assert.equal(last.suppressed, 60);
  assert.equal(last.detail, 'deny 198.51.100.0/24');
  assert.equal(last.reason, 'acl-cidr');
});

test('access log: a verdict change writes a would-end line (observe-only) and an end line with the rule in detail', () => {
  const clock = new ManualClock();
  const out = memoryWriter();
  const sink = accessLogSink(out, clock);
  const flow = { id: 7, route: 'game', proto: 'udp' as const, client: { address: '127.0.0.2', port: 4000, family: 4 as const } };
  sink({ type: 'session-would-end', at: 0, flow, reason: 'crowdsec', detail: 'test-ban (ban on Ip 127.0.0.2, origin cscli)' });
  const counters = { bytesFromClient: 1, packetsFromClient: 1, bytesToClient: 1, packetsToClient: 1 };
  sink({ type: 'session-ended', at: 0, flow, upstream: undefined, startedAt: 0, durationMs: 5, reason: 'acl-cidr', counters, detail: 'deny 127.0.0.0/8' });
  const [would, end] = out.lines();
  assert.deepEqual(would, {
    time: '1970-01-01T00:00:00.000Z',
    event: 'would-end',
    flowId: 7,
    route: 'game',
    proto: 'udp',
    clientAddr: '127.0.0.2',
    clientPort: 4000,
    reason: 'crowdsec',
    detail: 'test-ban (ban on Ip 127.0.0.2, origin cscli)',
  });
  assert.equal(end!.reason, 'acl-cidr');
  assert.equal(end!.detail, 'deny 127.0.0.0/8');
});

test('access log: an exposed session\'s end line carries the send budget\'s drops by reason, and only when there were some', () => {
  const out = memoryWriter();
  const sink = accessLogSink(out, new ManualClock());
  const flow = { id: 9, route: 'home/game', proto: 'udp' as const, client: { address: '192.0.2.7', port: 4000, family: 4 as const } };
  const counters = { bytesFromClient: 64, packetsFromClient: 1, bytesToClient: 0, packetsToClient: 0 };
  sink({ type: 'session-ended', at: 0, flow, upstream: undefined, startedAt: 0, durationMs: 5, reason: 'idle-timeout', counters, dropped: { 'agent-budget': 3, 'session-share': 120 } });
  sink({ type: 'session-ended', at: 0, flow: { ...flow, id: 10 }, upstream: undefined, startedAt: 0, durationMs: 5, reason: 'idle-timeout', counters });
  const [flooder, quiet] = out.lines();
  assert.deepEqual(flooder!.dropped, { 'agent-budget': 3, 'session-share': 120 });
  assert.equal('dropped' in quiet!, false);
});

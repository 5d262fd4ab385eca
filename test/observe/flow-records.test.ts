import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../src/core/clock.js';
import { createFlowRecords, type FlowRecord } from '../../src/observe/flow-records.js';
import { flowUuid, newInstanceId } from '../../src/observe/flow-id.js';
import type { LineWriter } from '../../src/observe/line-writer.js';
import type { LiveFlow } from '../../src/observe/live-flows.js';
import { RotatingFileWriter } from '../../src/observe/rotating-file.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { counters, ended, flow, live, started, T0 } from './events-fixture.js';
import { tempDir } from './tmp-dir.js';

const INSTANCE = '5b0e6a52-3c1f-4b8e-9d47-1f2a3b4c5d6e';

function memoryWriter() {
  const lines: string[] = [];
  const w: LineWriter = { write: (l) => void lines.push(l), close: async () => {} };
  return { w, lines, records: () => lines.map((l) => JSON.parse(l) as FlowRecord) };
}

test('start, periodic updates with rising counters, end: one UUID, every field', () => {
  const clock = new ManualClock(T0);
  const out = memoryWriter();
  let flows: LiveFlow[] = [];
  const rec = createFlowRecords(out.w, { clock, instanceId: INSTANCE, liveFlows: () => flows });
  const f = flow(7);
  rec.sink(started(f, T0));
  flows = [live(f, counters(1200, 800, 12, 10))];
  clock.advance(60_000);
  flows = [live(f, counters(2400, 1900, 24, 21))];
  clock.advance(60_000);
  rec.sink(ended(f, counters(2500, 2000, 25, 22), T0 + 150_000));
  flows = [];
  clock.advance(60_000);
  rec.stop();

  const uuid = flowUuid(INSTANCE, 'sluice', 7);
  const common = {
    source: 'sluice',
    instanceId: INSTANCE,
    flowUuid: uuid,
    direction: 'ingress',
    flowId: 7,
    route: 'dns',
    proto: 'udp',
    clientAddr: '198.51.100.7',
    clientPort: 40007,
    upstreamAddr: '10.0.0.2',
    upstreamPort: 53,
    startTime: '2026-01-01T00:00:00.000Z',
  };
  assert.deepEqual(out.records(), [
    { time: '2026-01-01T00:00:00.000Z', event: 'start', ...common, durationMs: 0, bytesFromClient: 0, bytesToClient: 0, packetsFromClient: 0, packetsToClient: 0, rxBytes: 0, txBytes: 0, rxPackets: 0, txPackets: 0 },
    { time: '2026-01-01T00:01:00.000Z', event: 'update', ...common, durationMs: 60_000, bytesFromClient: 1200, bytesToClient: 800, packetsFromClient: 12, packetsToClient: 10, rxBytes: 1200, txBytes: 800, rxPackets: 12, txPackets: 10 },
    { time: '2026-01-01T00:02:00.000Z', event: 'update', ...common, durationMs: 120_000, bytesFromClient: 2400, bytesToClient: 1900, packetsFromClient: 24, packetsToClient: 21, rxBytes: 2400, txBytes: 1900, rxPackets: 24, txPackets: 21 },
    { time: '2026-01-01T00:02:30.000Z', event: 'end', ...common, durationMs: 150_000, bytesFromClient: 2500, bytesToClient: 2000, packetsFromClient: 25, packetsToClient: 22, rxBytes: 2500, txBytes: 2000, rxPackets: 25, txPackets: 22, reason: 'idle-timeout' },
  ]);
  // Field order is part of the format people read: time and event first, reason last.
  assert.match(out.lines[3]!, new RegExp(`^\\{"time":"[^"]+","event":"end","source":"sluice","instanceId":"${INSTANCE}","flowUuid":"[^"]+","direction":"ingress","flowId":7,"route":"dns",.*,"reason":"idle-timeout"\\}\\n$`));
});

test('updates go only to open flows at least half an interval old', (t) => {
  const clock = new ManualClock(T0);
  const out = memoryWriter();
  const young = flow(1);
  const old = flow(2);
  const dialing = flow(3);
  let flows = [live(young, counters(1, 1), T0 + 40_000), live(old, counters(5, 5), T0), live(dialing, counters(9, 0), T0, 'dialing')];
  const rec = createFlowRecords(out.w, { clock, instanceId: INSTANCE, updateIntervalMs: 60_000, liveFlows: () => flows });
  t.after(() => rec.stop());
  clock.advance(60_000);
  assert.deepEqual(out.records().map((r) => [r.event, r.flowId]), [['update', 2]]);
  flows = [live(young, counters(2, 2), T0 + 40_000)];
  clock.advance(60_000);
  assert.deepEqual(out.records().map((r) => [r.event, r.flowId, r.durationMs]), [['update', 2, 60_000], ['update', 1, 80_000]]);
});

test('direction comes from a function; egress swaps rx and tx', () => {
  const clock = new ManualClock(T0);
  const out = memoryWriter();
  const rec = createFlowRecords(out.w, { clock, instanceId: INSTANCE, direction: (f) => (f.route.startsWith('out-') ? 'egress' : 'ingress') });
  rec.sink(ended(flow(1, 'out-api', 'tcp'), counters(100, 9000), T0 + 1000, T0, 'client-closed'));
  rec.sink(ended(flow(2, 'web', 'tcp'), counters(100, 9000), T0 + 1000, T0, 'client-closed'));
  const [egress, ingress] = out.records();
  assert.deepEqual(
    [egress!.direction, egress!.rxBytes, egress!.txBytes, egress!.bytesFromClient, egress!.bytesToClient],
    ['egress', 9000, 100, 100, 9000],
  );
  assert.deepEqual([ingress!.direction, ingress!.rxBytes, ingress!.txBytes], ['ingress', 100, 9000]);
  assert.equal(clock.pendingTimers, 0, 'no liveFlows: no update timer');
});

test('a big table is written in slices, one event-loop turn each', () => {
  const base = new ManualClock(T0);
  let zeroDelayTimers = 0;
  const clock: Clock = {
    now: () => base.now(),
    wallNow: () => base.wallNow(),
    setInterval: (fn, ms) => base.setInterval(fn, ms),
    setTimeout: (fn, ms) => (ms === 0 && zeroDelayTimers++, base.setTimeout(fn, ms)),
  };
  const out = memoryWriter();
  const flows = Array.from({ length: 2500 }, (_, i) => live(flow(i + 1), counters(i, i)));
  const rec = createFlowRecords(out.w, { clock, instanceId: INSTANCE, updateIntervalMs: 10_000, liveFlows: () => flows });
  base.advance(10_000);
  assert.equal(out.lines.length, 2500);
  assert.equal(zeroDelayTimers, 2);
  assert.equal(new Set(out.records().map((r) => r.flowUuid)).size, 2500);
  rec.stop();
  base.advance(10_000);
  assert.equal(out.lines.length, 2500, 'stopped: no more updates');
  assert.equal(base.pendingTimers, 0);
  rec.stop();
});

test('records from another source go through write(); updateIntervalMs 0 turns updates off', () => {
  const clock = new ManualClock(T0);
  const out = memoryWriter();
  const rec = createFlowRecords(out.w, { clock, instanceId: INSTANCE, updateIntervalMs: 0, liveFlows: () => [live(flow(1), counters(1, 1))] });
  assert.equal(clock.pendingTimers, 0);
  const r: FlowRecord = {
    time: '2026-01-01T00:00:00.000Z',
    event: 'start',
    source: 'conntrack',
    instanceId: INSTANCE,
    flowUuid: flowUuid(INSTANCE, 'conntrack', 123456),
    direction: 'egress',
    flowId: 123456,
    route: '',
    proto: 'tcp',
    clientAddr: '100.64.0.2',
    clientPort: 51000,
    upstreamAddr: '192.0.2.10',
    upstreamPort: 443,
    startTime: '2026-01-01T00:00:00.000Z',
    durationMs: 0,
    ...counters(0, 0),
    rxBytes: 0,
    txBytes: 0,
    rxPackets: 0,
    txPackets: 0,
  };
  rec.write(r);
  assert.deepEqual(out.records(), [r]);
});

test('end to end into a rotated file: JSON lines, the same UUID from start to end', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'flows.jsonl');
  const file = new RotatingFileWriter(path, { maxBytes: 1 << 20, maxFiles: 2 });
  const clock = new ManualClock(T0);
  const instanceId = newInstanceId();
  let flows: LiveFlow[] = [];
  const rec = createFlowRecords(file, { clock, instanceId, updateIntervalMs: 1000, liveFlows: () => flows });
  t.after(() => rec.stop());
  const f = flow(1, 'ssh', 'tcp');
  rec.sink(started(f, T0));
  for (let i = 1; i <= 3; i++) {
    flows = [live(f, counters(i * 100, i * 1000))];
    clock.advance(1000);
  }
  rec.sink(ended(f, counters(350, 3500), T0 + 3500, T0, 'client-closed'));
  await file.close();
  const records = (await readFile(path, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as FlowRecord);
  assert.deepEqual(records.map((r) => r.event), ['start', 'update', 'update', 'update', 'end']);
  assert.deepEqual(new Set(records.map((r) => r.flowUuid)), new Set([flowUuid(instanceId, 'sluice', 1)]));
  assert.deepEqual(records.map((r) => r.bytesToClient), [0, 1000, 2000, 3000, 3500]);
});

test('an exposed session\'s end record carries the send budget\'s drops by reason, and only when there were some', () => {
  const out = memoryWriter();
  const rec = createFlowRecords(out.w, { clock: new ManualClock(T0), instanceId: INSTANCE });
  const e = ended(flow(1, 'home/game', 'udp'), counters(640, 0, 10, 0), T0 + 1000);
  rec.sink({ ...e, dropped: { 'session-share': 42 } } as typeof e);
  rec.sink(ended(flow(2, 'home/game', 'udp'), counters(64, 64, 1, 1), T0 + 1000));
  const [flooder, quiet] = out.records();
  assert.deepEqual(flooder!.dropped, { 'session-share': 42 });
  assert.equal('dropped' in quiet!, false);
});

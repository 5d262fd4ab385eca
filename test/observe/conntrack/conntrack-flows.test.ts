import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConntrackFlows } from '../../../src/observe/conntrack/conntrack-flows.js';
import { compileDirection } from '../../../src/observe/conntrack/direction.js';
import { parseEventLine } from '../../../src/observe/conntrack/event-parser.js';
import type { ConntrackEvent } from '../../../src/observe/conntrack/event.js';
import type { ConntrackFlowRecord } from '../../../src/observe/conntrack/flow-record.js';
import { captured, loopback } from './captured-lines.js';

const INSTANCE = '5b0e6a52-3c1f-4b8e-9d47-1f2a3b4c5d6e';
const WALL = Date.UTC(2026, 0, 1);

function flows(maxTracked = 65_536) {
  let wallReads = 0;
  const f = new ConntrackFlows({
    directionOf: compileDirection({ localNetworks: ['10.77.0.1', 'fd77::1'] }),
    maxTracked,
    instanceId: INSTANCE,
    wallNow: () => (wallReads++, WALL),
  });
  return { f, wallReads: () => wallReads };
}

/** A captured UDP flow (egress) with its id and kernel times replaced. */
const udpNew = (id: number, ms?: number): ConntrackEvent => ({ ...parseEventLine(captured.udpEgressNew), id, timestampMs: ms });
const udpEnd = (id: number, ms?: number, deltaTimeS?: number): ConntrackEvent => ({ ...parseEventLine(captured.udpEgressFlushed), id, timestampMs: ms, deltaTimeS });

function record(outcome: ReturnType<ConntrackFlows['onEvent']>): ConntrackFlowRecord {
  assert.equal(typeof outcome, 'object', `a record, not ${String(outcome)}`);
  return outcome as ConntrackFlowRecord;
}

test('NEW becomes start, DESTROY end with the start time seen in NEW; the start is forgotten at the end', () => {
  const { f, wallReads } = flows();
  const start = record(f.onEvent(parseEventLine(captured.tcpIngressNew)));
  assert.deepEqual([start.event, start.direction, start.durationMs], ['start', 'ingress', 0]);
  assert.equal(f.tracked, 1);
  const end = record(f.onEvent(parseEventLine(captured.tcpIngressFlushed)));
  assert.deepEqual([end.event, end.flowUuid, end.startTime], ['end', start.flowUuid, start.time]);
  assert.equal(end.durationMs, 1795306109595 - 1795306106639);
  assert.equal(f.tracked, 0);
  assert.equal(wallReads(), 0, 'kernel timestamps are used when present');
});

test('updates, other protocols and flows outside the local networks make no record and no table entry', () => {
  const { f, wallReads } = flows();
  assert.equal(f.onEvent(parseEventLine(loopback[1]!)), 'update');
  const gre = '[NEW] ipv4 2 gre 47 30 src=10.77.0.2 dst=10.77.0.1 srckey=0x0 dstkey=0x0 src=10.77.0.1 dst=10.77.0.2 srckey=0x0 dstkey=0x0 id=9';
  assert.equal(f.onEvent(parseEventLine(gre)), 'skipped-protocol');
  assert.equal(f.onEvent(parseEventLine(loopback[0]!)), 'skipped-direction');
  assert.equal(f.tracked, 0);
  assert.equal(wallReads(), 0);
});

test('an end not seen starts at delta-time before it, else at its own time; without a kernel timestamp the wall clock is read', () => {
  const { f, wallReads } = flows();
  assert.equal(record(f.onEvent(udpEnd(1, 50_000, 3))).durationMs, 3000);
  const bare = record(f.onEvent(udpEnd(2, 50_000)));
  assert.deepEqual([bare.durationMs, bare.startTime], [0, new Date(50_000).toISOString()]);
  const wall = record(f.onEvent(udpEnd(3, undefined, 2)));
  assert.deepEqual([wall.time, wall.durationMs, wallReads()], [new Date(WALL).toISOString(), 2000, 1]);
});

test('a start later than its end is clamped to the end (duration 0)', () => {
  const { f } = flows();
  f.onEvent(udpNew(7, 90_000));
  const end = record(f.onEvent(udpEnd(7, 80_000, 5)));
  assert.deepEqual([end.startTime, end.durationMs], [new Date(80_000).toISOString(), 0]);
});

test('at most maxTracked start times, the oldest forgotten first; a repeated NEW counts as the newest', () => {
  const { f } = flows(2);
  f.onEvent(udpNew(1, 1000));
  f.onEvent(udpNew(2, 2000));
  f.onEvent(udpNew(1, 3000)); // id 1 again: now newer than 2
  f.onEvent(udpNew(3, 4000)); // forgets 2
  assert.equal(f.tracked, 2);
  assert.equal(record(f.onEvent(udpEnd(2, 10_000, 1))).durationMs, 1000, 'forgotten: delta-time');
  assert.equal(record(f.onEvent(udpEnd(1, 10_000, 1))).durationMs, 7000);
  assert.equal(record(f.onEvent(udpEnd(3, 10_000, 1))).durationMs, 6000);
  const none = flows(0).f;
  none.onEvent(udpNew(1, 1000));
  assert.equal(none.tracked, 0);
  assert.equal(record(none.onEvent(udpEnd(1, 10_000, 1))).durationMs, 1000);
});

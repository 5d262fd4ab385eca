import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flowUuid } from '../../../src/observe/flow-id.js';
import { conntrackFlowRecord, endReason, parseEventLine, type ConntrackEvent, type ConntrackProto } from '../../../src/observe/conntrack/index.js';
import { captured } from './captured-lines.js';

const INSTANCE = '5b0e6a52-3c1f-4b8e-9d47-1f2a3b4c5d6e';
const ev = (line: string) => parseEventLine(line) as ConntrackEvent & { proto: ConntrackProto };

test('ingress TCP end: client is the opener, rx = original counters, tx = reply counters, exact field order', () => {
  const e = ev(captured.tcpIngressFlushed);
  const r = conntrackFlowRecord(e, { instanceId: INSTANCE, direction: 'ingress', time: e.timestampMs!, startedAt: e.timestampMs! - 3000 });
  const want = {
    time: '2026-11-22T00:08:29.595Z',
    event: 'end',
    source: 'conntrack',
    instanceId: INSTANCE,
    flowUuid: flowUuid(INSTANCE, 'conntrack', 2609621952),
    direction: 'ingress',
    flowId: 2609621952,
    route: '',
    proto: 'tcp',
    clientAddr: '10.77.0.2',
    clientPort: 57926,
    upstreamAddr: '10.77.0.1',
    upstreamPort: 7000,
    startTime: '2026-11-22T00:08:26.595Z',
    durationMs: 3000,
    bytesFromClient: 278,
    bytesToClient: 164,
    packetsFromClient: 5,
    packetsToClient: 3,
    rxBytes: 278,
    txBytes: 164,
    rxPackets: 5,
    txPackets: 3,
    reason: 'deleted',
  };
  assert.deepEqual(r, want);
  assert.deepEqual(Object.keys(r), Object.keys(want), 'documented field order');
});

test('egress UDP: rx is what came back (reply), tx what this host sent (original)', () => {
  const e = ev(captured.udpEgressFlushed);
  const r = conntrackFlowRecord(e, { instanceId: INSTANCE, direction: 'egress', time: 1000, startedAt: 400 });
  assert.equal(r.clientAddr, '10.77.0.1');
  assert.equal(r.upstreamPort, 7001);
  assert.deepEqual([r.bytesFromClient, r.packetsFromClient, r.bytesToClient, r.packetsToClient], [32, 1, 0, 0]);
  assert.deepEqual([r.rxBytes, r.rxPackets, r.txBytes, r.txPackets], [0, 0, 32, 1]);
  assert.equal(r.durationMs, 600);
});

test('ICMP: ports 0, type and code of the original direction, placed after the addresses', () => {
  const start = conntrackFlowRecord(ev(captured.icmpIngressNew), { instanceId: INSTANCE, direction: 'ingress', time: 5, startedAt: 5 });
  assert.equal(start.event, 'start');
  assert.equal(start.proto, 'icmp');
  assert.deepEqual([start.clientPort, start.upstreamPort, start.icmpType, start.icmpCode], [0, 0, 8, 0]);
  assert.deepEqual(Object.keys(start).slice(11, 15), ['upstreamAddr', 'upstreamPort', 'icmpType', 'icmpCode']);
  assert.equal(start.reason, undefined);
  assert.equal(start.durationMs, 0);
  assert.equal(start.rxBytes + start.txBytes + start.rxPackets + start.txPackets, 0, 'start records have zero counters');
  const v6 = conntrackFlowRecord(ev(captured.icmp6EgressFlushed), { instanceId: INSTANCE, direction: 'egress', time: 5, startedAt: 5 });
  assert.deepEqual([v6.proto, v6.icmpType, v6.icmpCode, v6.rxPackets, v6.txPackets], ['icmpv6', 128, 0, 1, 1]);
});

test('end reasons: program-deleted, TCP closed, timed out', () => {
  assert.equal(endReason(ev(captured.tcpIngressFlushed)), 'deleted');
  assert.equal(endReason(ev(captured.tcpRefusedDestroy)), 'closed');
  assert.equal(endReason(ev(captured.udpExpired)), 'expired');
  assert.equal(endReason(ev(captured.icmpExpired)), 'expired');
  assert.equal(endReason(ev(captured.tcpRefusedDestroy.replace('CLOSE', 'ESTABLISHED'))), 'expired');
});

test('the same conntrack id gives the same UUID in start and end; the sluice source never collides with it', () => {
  const a = conntrackFlowRecord(ev(captured.tcpIngressNew), { instanceId: INSTANCE, direction: 'ingress', time: 0, startedAt: 0 });
  const b = conntrackFlowRecord(ev(captured.tcpIngressFlushed), { instanceId: INSTANCE, direction: 'ingress', time: 0, startedAt: 0 });
  assert.equal(a.flowUuid, b.flowUuid);
  assert.notEqual(a.flowUuid, flowUuid(INSTANCE, 'sluice', 2609621952));
});

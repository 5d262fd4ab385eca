import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../../src/core/errors.js';
import { ConntrackSource, type ConntrackSourceOptions, type ConntrackStatus } from '../../../src/observe/conntrack/index.js';
import { flowUuid } from '../../../src/observe/flow-id.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { captured, loopback } from './captured-lines.js';
import { fakeSpawner, fakeSysctl, memoryRecorder, settle } from './fake-process.js';

const INSTANCE = '5b0e6a52-3c1f-4b8e-9d47-1f2a3b4c5d6e';
const ACCT = 'net.netfilter.nf_conntrack_acct';
const TSTAMP = 'net.netfilter.nf_conntrack_timestamp';

function harness(opts: Partial<ConntrackSourceOptions> = {}, random: () => number = () => 0.5) {
  const clock = new ManualClock();
  const spawner = fakeSpawner();
  const recorder = memoryRecorder();
  const sysctl = fakeSysctl({ [ACCT]: '0', [TSTAMP]: '0' });
  const statuses: ConntrackStatus[] = [];
  const source = new ConntrackSource(
    { localNetworks: ['10.77.0.1', 'fd77::1'], ...opts },
    { clock, recorder, instanceId: INSTANCE, spawn: spawner.spawn, sysctl, random, onStatus: (s) => void statuses.push(s) },
  );
  const retries = () => statuses.flatMap((s) => (s.type === 'exited' || s.type === 'spawn-failed' ? [s.retryInMs] : []));
  return { clock, spawner, recorder, sysctl, statuses, source, retries };
}

test('the tool is started with event arguments after the configured command', async (t) => {
  const h = harness({ command: ['ip', 'netns', 'exec', 'ns1', 'conntrack'] });
  t.after(() => h.source.close());
  await h.source.start();
  assert.equal(h.spawner.last.file, 'ip');
  assert.deepEqual(h.spawner.last.args, ['netns', 'exec', 'ns1', 'conntrack', '-E', '-e', 'NEW,DESTROY', '-o', 'extended,id,timestamp', '-b', '4194304']);
  assert.deepEqual(h.source.commandLine, ['ip', ...h.spawner.last.args]);
  assert.equal(h.source.pid, h.spawner.last.pid);
  const noBuffer = harness({ netlinkBufferBytes: 0 });
  t.after(() => noBuffer.source.close());
  await noBuffer.source.start();
  assert.deepEqual(noBuffer.spawner.last.args, ['-E', '-e', 'NEW,DESTROY', '-o', 'extended,id,timestamp']);
});

test('restarts after 5 s, 10 s, 20 s ... capped at 5 min, forever, on the injected clock', async (t) => {
  const h = harness(); // random 0.5: no jitter
  t.after(() => h.source.close());
  await h.source.start();
  const want = [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000];
  for (let i = 0; i < want.length; i++) {
    assert.equal(h.spawner.children.length, i + 1);
    h.spawner.last.exit(1);
    await settle();
    assert.equal(h.source.state, 'waiting');
    assert.equal(h.retries()[i], want[i]);
    h.clock.advance(want[i]! - 1);
    assert.equal(h.spawner.children.length, i + 1, `not before ${want[i]} ms`);
    h.clock.advance(1);
    assert.equal(h.spawner.children.length, i + 2, `at ${want[i]} ms`);
    assert.equal(h.source.state, 'running');
  }
  assert.deepEqual(h.retries(), want);
  const exited = h.statuses.find((s) => s.type === 'exited');
  assert.ok(exited && exited.type === 'exited' && exited.code === 1 && exited.runMs === 0);
});

test('jitter: each delay is within ±50 % of the nominal one and never above the cap', async (t) => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const h = harness({}, random);
  t.after(() => h.source.close());
  await h.source.start();
  const nominal = [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000, 300_000, 300_000];
  for (let i = 0; i < nominal.length; i++) {
    h.spawner.last.exit(1);
    await settle();
    const d = h.retries()[i]!;
    assert.ok(d >= nominal[i]! * 0.5 && d <= Math.min(nominal[i]! * 1.5, 300_000), `attempt ${i}: ${d} ms`);
    h.clock.advance(d);
  }
  assert.ok(new Set(h.retries()).size > 6, 'delays are actually randomised');
});

test('a run that lasted resetAfterMs starts the schedule over; a shorter one does not', async (t) => {
  const h = harness({ backoff: { resetAfterMs: 60_000 } });
  t.after(() => h.source.close());
  await h.source.start();
  for (const d of [5_000, 10_000, 20_000]) {
    h.spawner.last.exit(1);
    await settle();
    h.clock.advance(d);
  }
  h.clock.advance(59_999); // up just short of healthy
  h.spawner.last.exit(1);
  await settle();
  assert.equal(h.retries().at(-1), 40_000);
  h.clock.advance(40_000);
  h.clock.advance(60_000); // healthy
  h.spawner.last.exit(0);
  await settle();
  assert.equal(h.retries().at(-1), 5_000);
  h.clock.advance(5_000);
  h.spawner.last.exit(1);
  await settle();
  assert.equal(h.retries().at(-1), 10_000);
});

test('a spawn that throws or fails like ENOENT is retried on the same schedule', async (t) => {
  const h = harness();
  t.after(() => h.source.close());
  h.spawner.fail('throw');
  await h.source.start();
  assert.equal(h.source.state, 'waiting');
  assert.equal(h.statuses.at(-1)?.type, 'spawn-failed');
  h.spawner.fail('enoent');
  h.clock.advance(5_000);
  await settle();
  const failed = h.statuses.at(-1);
  assert.ok(failed?.type === 'spawn-failed' && /ENOENT/.test(failed.error.message));
  assert.deepEqual(h.retries(), [5_000, 10_000]);
  h.clock.advance(10_000);
  assert.equal(h.source.state, 'running');
  assert.equal(h.source.stats.spawned, 1, 'failed execs are not counted');
  assert.equal(h.statuses.filter((s) => s.type === 'spawned').length, 1);
});

test('start, stop and close are idempotent; stop during backoff cancels the restart; start after close rejects', async () => {
  const h = harness();
  await Promise.all([h.source.start(), h.source.start()]);
  await h.source.start();
  assert.equal(h.spawner.children.length, 1);
  const first = h.spawner.last;
  await Promise.all([h.source.stop(), h.source.stop()]);
  assert.deepEqual(first.signals, ['SIGTERM']);
  assert.equal(h.source.state, 'idle');
  assert.equal(h.source.pid, undefined);
  assert.equal(h.statuses.filter((s) => s.type === 'exited').length, 0, 'a stop is not a crash');

  await h.source.start(); // a stopped source starts again
  assert.equal(h.spawner.children.length, 2);
  h.spawner.last.exit(1);
  await settle();
  assert.equal(h.source.state, 'waiting');
  assert.equal(h.clock.pendingTimers, 1);
  await h.source.stop();
  assert.equal(h.clock.pendingTimers, 0);
  h.clock.advance(600_000);
  assert.equal(h.spawner.children.length, 2, 'no restart after stop');

  await h.source.close();
  await h.source.close();
  await h.source.stop();
  assert.equal(h.source.state, 'closed');
  await assert.rejects(h.source.start(), (err: unknown) => isSluiceError(err, 'SLUICE_ERR_CLOSED'));
});

test('stop escalates to SIGKILL after stopTimeoutMs when the tool ignores SIGTERM', async () => {
  const h = harness({ stopTimeoutMs: 2_000 });
  await h.source.start();
  const child = h.spawner.last;
  child.obeys = (s) => s === 'SIGKILL';
  const stopped = h.source.stop();
  await settle();
  assert.deepEqual(child.signals, ['SIGTERM']);
  h.clock.advance(2_000);
  await stopped;
  assert.deepEqual(child.signals, ['SIGTERM', 'SIGKILL']);
  assert.equal(h.source.state, 'idle');
});

test('aborting the signal closes the source', async () => {
  const clock = new ManualClock();
  const spawner = fakeSpawner();
  const ac = new AbortController();
  const source = new ConntrackSource(
    { localNetworks: [], accounting: false },
    { clock, recorder: memoryRecorder(), instanceId: INSTANCE, spawn: spawner.spawn, signal: ac.signal },
  );
  await source.start();
  ac.abort();
  await settle(5);
  assert.equal(source.state, 'closed');
  assert.deepEqual(spawner.last.signals, ['SIGTERM']);
});

test('accounting is turned on before the tool starts and restored on stop, unless someone changed it since', async () => {
  const h = harness({ timestamps: true });
  await h.source.start();
  assert.deepEqual(h.sysctl.writes, [`${ACCT}=1`, `${TSTAMP}=1`]);
  assert.deepEqual(
    h.statuses.filter((s) => s.type === 'sysctl-set').map((s) => s.type === 'sysctl-set' && [s.name, s.from, s.to]),
    [[ACCT, '0', '1'], [TSTAMP, '0', '1']],
  );
  h.sysctl.values[TSTAMP] = '0'; // an operator turned it off meanwhile: leave theirs
  await h.source.stop();
  assert.deepEqual(h.sysctl.values, { [ACCT]: '0', [TSTAMP]: '0' });
  assert.deepEqual(h.sysctl.writes, [`${ACCT}=1`, `${TSTAMP}=1`, `${ACCT}=0`]);
  await h.source.stop();
  assert.equal(h.sysctl.writes.length, 3, 'restore happens once');

  const already = harness();
  already.sysctl.values[ACCT] = '1';
  await already.source.start();
  await already.source.close();
  assert.deepEqual(already.sysctl.writes, [], 'already on: nothing to set or restore');
});

test('a missing sysctl is reported and the tool still starts (records then have zero counters)', async (t) => {
  const h = harness();
  t.after(() => h.source.close());
  delete h.sysctl.values[ACCT];
  await h.source.start();
  const failed = h.statuses.find((s) => s.type === 'sysctl-failed');
  assert.ok(failed?.type === 'sysctl-failed' && failed.name === ACCT);
  assert.equal(h.source.state, 'running');
});

test('events become start and end records; the end carries the start time seen in NEW', async (t) => {
  const h = harness();
  t.after(() => h.source.close());
  await h.source.start();
  const child = h.spawner.last;
  child.emitLine(captured.tcpIngressNew);
  child.emitLine(captured.udpEgressNew);
  child.emitLine(loopback[1]!); // UPDATE: not recorded
  child.emitLine(captured.udpEgressFlushed);
  child.emitLine(captured.tcpIngressFlushed);
  child.emitLine(captured.icmpIngressFlushed); // NEW not seen: start from delta-time
  child.emitLine('[NEW] ipv4 2 gre 47 30 src=10.77.0.2 dst=10.77.0.1 srckey=0x0 dstkey=0x0 src=10.77.0.1 dst=10.77.0.2 srckey=0x0 dstkey=0x0 id=9');
  child.emitLine(loopback[0]!); // 127.0.0.1 both ends: direction unknown, skipped
  await settle();
  const recs = h.recorder.records;
  assert.deepEqual(
    recs.map((r) => [r.event, r.proto, r.direction, r.clientAddr, r.upstreamAddr]),
    [
      ['start', 'tcp', 'ingress', '10.77.0.2', '10.77.0.1'],
      ['start', 'udp', 'egress', '10.77.0.1', '10.77.0.2'],
      ['end', 'udp', 'egress', '10.77.0.1', '10.77.0.2'],
      ['end', 'tcp', 'ingress', '10.77.0.2', '10.77.0.1'],
      ['end', 'icmp', 'ingress', '10.77.0.2', '10.77.0.1'],
    ],
  );
  const [tcpStart, , udpEnd, tcpEnd, icmpEnd] = recs as [(typeof recs)[0], unknown, (typeof recs)[0], (typeof recs)[0], (typeof recs)[0]];
  assert.equal(tcpEnd.flowUuid, tcpStart.flowUuid);
  assert.equal(tcpEnd.flowUuid, flowUuid(INSTANCE, 'conntrack', 2609621952));
  assert.equal(tcpEnd.startTime, tcpStart.time);
  assert.equal(tcpEnd.durationMs, 1795306109595 - 1795306106639);
  assert.deepEqual([tcpEnd.rxBytes, tcpEnd.txBytes, tcpEnd.reason], [278, 164, 'deleted']);
  assert.deepEqual([udpEnd.rxBytes, udpEnd.txBytes, udpEnd.txPackets], [0, 32, 1]);
  assert.equal(icmpEnd.durationMs, 1000, 'delta-time=1');
  assert.deepEqual(h.source.stats, {
    spawned: 1,
    exits: 0,
    lines: 8,
    linesRejected: 0,
    linesOverlong: 0,
    eventsLostWarnings: 0,
    recordsWritten: 5,
    skippedProtocol: 1,
    skippedDirection: 1,
  });
});

test('bad lines are counted and reported once per run; overlong lines are dropped; ENOBUFS is reported', async (t) => {
  const h = harness();
  t.after(() => h.source.close());
  await h.source.start();
  const child = h.spawner.last;
  child.emitLine('garbage one');
  child.emitLine('garbage two');
  child.stdout.write('x'.repeat(20_000));
  child.emitLine('');
  child.emitLine(captured.tcpIngressNew);
  child.stderr.write('WARNING: We have hit ENOBUFS! We are losing events.\nThis message means ...\n');
  child.stderr.write('WARNING: We have hit ENOBUFS! We are losing events.\n');
  await settle();
  assert.equal(h.recorder.records.length, 1);
  const rejected = h.statuses.filter((s) => s.type === 'line-rejected');
  assert.equal(rejected.length, 1);
  assert.ok(rejected[0]?.type === 'line-rejected' && rejected[0].line === 'garbage one' && rejected[0].error.reason === 'bad-head');
  assert.equal(h.source.stats.linesRejected, 2);
  assert.equal(h.source.stats.linesOverlong, 1);
  assert.equal(h.source.stats.eventsLostWarnings, 2);
  assert.equal(h.statuses.filter((s) => s.type === 'events-lost').length, 1);
  child.exit(1);
  await settle();
  const exited = h.statuses.find((s) => s.type === 'exited');
  assert.ok(exited?.type === 'exited' && exited.stderr.includes('ENOBUFS'));
});

test('bad options are refused as SLUICE_ERR_CONFIG_INVALID', () => {
  const deps = { clock: new ManualClock(), recorder: memoryRecorder(), instanceId: INSTANCE };
  for (const opts of [
    { localNetworks: ['10.0.0.1/8'] },
    { localNetworks: [], backoff: { initialMs: 0 } },
    { localNetworks: [], backoff: { initialMs: 10, maxMs: 5 } },
    { localNetworks: [], backoff: { jitter: 2 } },
    { localNetworks: [], command: [] },
    { localNetworks: [], netlinkBufferBytes: -1 },
  ]) {
    assert.throws(() => new ConntrackSource(opts, deps), (err: unknown) => isSluiceError(err, 'SLUICE_ERR_CONFIG_INVALID'), JSON.stringify(opts));
  }
});

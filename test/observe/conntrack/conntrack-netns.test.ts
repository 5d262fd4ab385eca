// End to end against the kernel: the real `conntrack -E` inside a namespace this test creates,
// real TCP, UDP and ICMP flows over a veth pair, and a conntrack process killed mid-test.
// Needs root, iproute2, conntrack, nftables, procps and ping (see netnsUnavailable). On CI
// (CI=true) a missing piece fails the test; elsewhere it is skipped with a warning.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../../src/core/clock.js';
import { ConntrackSource, type ConntrackFlowRecord, type ConntrackStatus } from '../../../src/observe/conntrack/index.js';
import { newInstanceId } from '../../../src/observe/flow-id.js';
import type { FlowRecord } from '../../../src/observe/flow-records.js';
import { netnsSysctl, netnsUnavailable, run, vethPair } from './netns-helpers.js';

const ACCT = 'net.netfilter.nf_conntrack_acct';

async function requireNetns(t: TestContext): Promise<boolean> {
  const why = await netnsUnavailable();
  if (!why) return true;
  if (process.env.CI === 'true') assert.fail(`conntrack namespace test cannot run on CI: ${why}`);
  console.warn(`\n!!! SKIPPING the conntrack namespace test: ${why}\n`);
  t.skip(why);
  return false;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000, poke?: () => Promise<unknown>): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    if (poke) await poke();
    await new Promise((r) => setTimeout(r, poke ? 150 : 20));
  }
}

test('kernel flows in a namespace: TCP, UDP and ICMP start and end records; a killed conntrack is restarted', { timeout: 90_000 }, async (t) => {
  if (!(await requireNetns(t))) return;
  const net = await vethPair(t, `sl-ct-${process.pid}-`);
  const sysctl = netnsSysctl(net.a);
  await sysctl.write(ACCT, '0'); // a fresh namespace has it off already; make the restore check meaningful
  assert.equal(await sysctl.read(ACCT), '0');

  const records: ConntrackFlowRecord[] = [];
  const statuses: ConntrackStatus[] = [];
  const source = new ConntrackSource(
    {
      localNetworks: ['10.77.0.1', 'fd77::1'],
      command: ['ip', 'netns', 'exec', net.a, 'conntrack'],
      accounting: true,
      backoff: { initialMs: 300, maxMs: 2_000 },
    },
    {
      clock: systemClock,
      recorder: { write: (r: FlowRecord) => void records.push(r as unknown as ConntrackFlowRecord) },
      instanceId: newInstanceId(),
      sysctl,
      onStatus: (s) => void statuses.push(s),
    },
  );
  t.after(() => source.close());
  await source.start();
  assert.equal(await sysctl.read(ACCT), '1', 'accounting on inside the namespace');

  /** The event subscription is live once a probe flow's record comes through (no readiness signal otherwise). */
  const untilListening = async (port: string) => {
    const seen = () => records.some((r) => r.event === 'start' && r.proto === 'tcp' && r.upstreamPort === Number(port));
    await waitFor(seen, `conntrack -E to report the probe to port ${port}`, 10_000, () => net.client(net.b, 'probe', '10.77.0.1', port));
  };
  const find = (event: 'start' | 'end', pred: (r: ConntrackFlowRecord) => boolean) => records.find((r) => r.event === event && pred(r));
  const both = async (what: string, pred: (r: ConntrackFlowRecord) => boolean) => {
    await waitFor(() => find('start', pred) !== undefined && find('end', pred) !== undefined, `${what}: start and end records`);
    const start = find('start', pred)!;
    const end = find('end', pred)!;
    assert.equal(end.flowUuid, start.flowUuid, `${what}: one UUID`);
    assert.equal(start.source, 'conntrack');
    assert.equal(start.route, '');
    assert.equal(start.rxBytes + start.txBytes, 0, `${what}: start has zero counters`);
    assert.ok(end.durationMs >= 0 && Date.parse(end.startTime) === Date.parse(start.time), `${what}: end starts when the start record did`);
    return { start, end };
  };

  await untilListening('7999');

  // Phase 1: ingress TCP (B -> A), egress UDP (A -> B), ingress ICMP and IPv6 TCP.
  await net.serve(net.a, 'serve-tcp', '10.77.0.1', '7000');
  await net.serve(net.b, 'serve-udp', '10.77.0.2', '7001');
  await net.serve(net.a, 'serve-tcp', 'fd77::1', '7003');
  assert.equal(await net.client(net.b, 'tcp', '10.77.0.1', '7000', '5000'), '5000');
  assert.equal(await net.client(net.a, 'udp', '10.77.0.2', '7001', '300'), '300');
  assert.equal(await net.client(net.b, 'tcp', 'fd77::1', '7003', '1000'), '1000');
  await net.exec(net.b, 'ping', '-c', '2', '-i', '0.2', '-W', '2', '10.77.0.1');
  // UDP and ICMP entries would otherwise live for their timeouts (30 s) and TCP in TIME_WAIT for
  // 120 s; a flush ends them all now, as DESTROY events from userspace.
  await waitFor(() => records.filter((r) => r.event === 'start').length >= 5, 'start records of phase 1');
  await net.exec(net.a, 'conntrack', '-F');

  const tcp = await both('ingress TCP', (r) => r.proto === 'tcp' && r.upstreamPort === 7000);
  assert.deepEqual([tcp.end.direction, tcp.end.clientAddr, tcp.end.upstreamAddr], ['ingress', '10.77.0.2', '10.77.0.1']);
  assert.ok(tcp.end.bytesFromClient >= 5000 && tcp.end.bytesToClient >= 5000, JSON.stringify(tcp.end));
  assert.equal(tcp.end.rxBytes, tcp.end.bytesFromClient, 'ingress: rx is what the client sent');
  assert.equal(tcp.end.txBytes, tcp.end.bytesToClient);
  assert.ok(tcp.end.rxPackets > 0 && tcp.end.txPackets > 0);
  assert.equal(tcp.end.reason, 'deleted');

  const udp = await both('egress UDP', (r) => r.proto === 'udp' && r.upstreamPort === 7001);
  assert.deepEqual([udp.end.direction, udp.end.clientAddr, udp.end.upstreamAddr], ['egress', '10.77.0.1', '10.77.0.2']);
  assert.equal(udp.end.bytesFromClient, 300 + 28, 'one datagram: 300 bytes of payload + UDP and IPv4 headers');
  assert.equal(udp.end.bytesToClient, 300 + 28);
  assert.deepEqual([udp.end.txBytes, udp.end.txPackets, udp.end.rxBytes, udp.end.rxPackets], [328, 1, 328, 1], 'egress: tx is what this host sent');

  const icmp = await both('ingress ICMP', (r) => r.proto === 'icmp' && r.clientAddr === '10.77.0.2');
  assert.deepEqual([icmp.end.direction, icmp.end.upstreamAddr, icmp.end.icmpType, icmp.end.icmpCode], ['ingress', '10.77.0.1', 8, 0]);
  assert.deepEqual([icmp.end.clientPort, icmp.end.upstreamPort], [0, 0]);
  assert.deepEqual([icmp.end.rxPackets, icmp.end.txPackets], [2, 2]);
  assert.equal(icmp.end.rxBytes, 2 * 84);

  const tcp6 = await both('ingress TCP over IPv6', (r) => r.proto === 'tcp' && r.upstreamPort === 7003);
  assert.deepEqual([tcp6.end.direction, tcp6.end.clientAddr, tcp6.end.upstreamAddr], ['ingress', 'fd77::2', 'fd77::1']);
  assert.ok(tcp6.end.rxBytes >= 1000 && tcp6.end.txBytes >= 1000);

  // Phase 2: the event source dies; it is restarted after the (short) backoff and keeps working.
  const firstPid = source.pid;
  assert.ok(firstPid !== undefined);
  process.kill(firstPid, 'SIGKILL');
  await waitFor(() => source.state === 'running' && source.pid !== undefined && source.pid !== firstPid, 'a restarted conntrack');
  const exited = statuses.find((s) => s.type === 'exited');
  assert.ok(exited?.type === 'exited' && exited.signal === 'SIGKILL' && exited.retryInMs >= 150 && exited.retryInMs <= 450, JSON.stringify(exited));
  await untilListening('7998');

  await net.serve(net.b, 'serve-tcp', '10.77.0.2', '7002');
  assert.equal(await net.client(net.a, 'tcp', '10.77.0.2', '7002', '2000'), '2000');
  await net.exec(net.a, 'ping', '-c', '1', '-W', '2', '10.77.0.2');
  await waitFor(() => find('start', (r) => r.proto === 'icmp' && r.clientAddr === '10.77.0.1') !== undefined, 'egress ping start');
  await net.exec(net.a, 'conntrack', '-F');

  const tcpOut = await both('egress TCP after restart', (r) => r.proto === 'tcp' && r.upstreamPort === 7002);
  assert.deepEqual([tcpOut.end.direction, tcpOut.end.clientAddr, tcpOut.end.upstreamAddr], ['egress', '10.77.0.1', '10.77.0.2']);
  assert.ok(tcpOut.end.txBytes >= 2000 && tcpOut.end.rxBytes >= 2000, 'egress: tx is what this host sent, rx what came back');
  assert.equal(tcpOut.end.txBytes, tcpOut.end.bytesFromClient);
  const pingOut = await both('egress ICMP after restart', (r) => r.proto === 'icmp' && r.clientAddr === '10.77.0.1');
  assert.deepEqual([pingOut.end.direction, pingOut.end.txPackets, pingOut.end.rxPackets], ['egress', 1, 1]);

  assert.equal(source.stats.linesRejected, 0, JSON.stringify(statuses.filter((s) => s.type === 'line-rejected')));
  assert.equal(source.stats.spawned, 2);

  if (process.env.CT_DUMP) for (const r of records) console.log(JSON.stringify(r));
  // Close: the tool is gone and the namespace's accounting is back to what it was.
  const lastPid = source.pid!;
  await source.close();
  assert.equal(source.state, 'closed');
  assert.equal(source.pid, undefined);
  assert.throws(() => process.kill(lastPid, 0), /ESRCH/, 'conntrack process has exited');
  assert.equal(await sysctl.read(ACCT), '0', 'nf_conntrack_acct restored');
  await run('ip', ['netns', 'exec', net.a, 'true']); // the namespace is still there for t.after to delete
});

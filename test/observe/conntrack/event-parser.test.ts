import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConntrackLineError, parseEventLine, type ConntrackEvent, type ConntrackLineErrorReason } from '../../../src/observe/conntrack/index.js';
import { captured, loopback } from './captured-lines.js';

function rejects(line: string, reason?: ConntrackLineErrorReason): ConntrackLineError {
  let thrown: unknown;
  try {
    parseEventLine(line);
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown instanceof ConntrackLineError, `expected a ConntrackLineError for ${JSON.stringify(line)}, got ${String(thrown)}`);
  assert.equal(thrown.code, 'SLUICE_ERR_CONNTRACK_LINE');
  if (reason) assert.equal(thrown.reason, reason, thrown.message);
  return thrown;
}

test('captured TCP NEW (ingress side of a veth pair): head, both tuples, id, timestamp', () => {
  assert.deepEqual(parseEventLine(captured.tcpIngressNew), {
    type: 'new',
    timestampMs: 1795306106639,
    family: 4,
    protoNum: 6,
    proto: 'tcp',
    state: 'SYN_SENT',
    id: 2609621952,
    orig: { src: '10.77.0.2', dst: '10.77.0.1', sport: 57926, dport: 7000 },
    reply: { src: '10.77.0.1', dst: '10.77.0.2', sport: 7000, dport: 57926 },
    assured: false,
    unreplied: true,
    userspace: false,
  } satisfies ConntrackEvent);
});

test('captured TCP DESTROY after conntrack -F: counters per direction, flags, delta-time, [USERSPACE] tail', () => {
  assert.deepEqual(parseEventLine(captured.tcpIngressFlushed), {
    type: 'destroy',
    timestampMs: 1795306109595,
    family: 4,
    protoNum: 6,
    proto: 'tcp',
    state: 'TIME_WAIT',
    id: 2609621952,
    orig: { src: '10.77.0.2', dst: '10.77.0.1', sport: 57926, dport: 7000, packets: 5, bytes: 278 },
    reply: { src: '10.77.0.1', dst: '10.77.0.2', sport: 7000, dport: 57926, packets: 3, bytes: 164 },
    deltaTimeS: 3,
    assured: true,
    unreplied: false,
    userspace: true,
  } satisfies ConntrackEvent);
});

test('captured ICMP: type, code and echo id per tuple; the last id= is the conntrack id', () => {
  const ev = parseEventLine(captured.icmpIngressFlushed);
  assert.equal(ev.proto, 'icmp');
  assert.equal(ev.id, 2737866359);
  assert.deepEqual(ev.orig, { src: '10.77.0.2', dst: '10.77.0.1', icmpType: 8, icmpCode: 0, icmpId: 23761, packets: 2, bytes: 168 });
  assert.deepEqual(ev.reply, { src: '10.77.0.1', dst: '10.77.0.2', icmpType: 0, icmpCode: 0, icmpId: 23761, packets: 2, bytes: 168 });
  const v6 = parseEventLine(captured.icmp6EgressNew);
  assert.equal(v6.family, 6);
  assert.equal(v6.proto, 'icmpv6');
  assert.equal(v6.id, 615113515);
  assert.deepEqual(v6.orig, { src: 'fd77::1', dst: 'fd77::2', icmpType: 128, icmpCode: 0, icmpId: 23762 });
});

test('captured expiry DESTROY has no timeout field; a kernel-made DESTROY has no [USERSPACE]', () => {
  const udp = parseEventLine(captured.udpExpired);
  assert.equal(udp.type, 'destroy');
  assert.equal(udp.userspace, false);
  assert.equal(udp.unreplied, true);
  assert.deepEqual(udp.orig, { src: '10.77.0.1', dst: '10.77.0.2', sport: 49933, dport: 7001, packets: 1, bytes: 32 });
  const rst = parseEventLine(captured.tcpRefusedDestroy);
  assert.equal(rst.state, 'CLOSE');
  assert.equal(rst.userspace, false);
});

test('captured mark and DNAT: mark is kept, the reply tuple shows the translated port', () => {
  assert.equal(parseEventLine(captured.udpEgressMarkedNew).mark, 16);
  assert.equal(parseEventLine(captured.udpEgressMarkedFlushed).mark, 16);
  const dnat = parseEventLine(captured.tcpDnatNew);
  assert.equal(dnat.orig.dport, 8000);
  assert.equal(dnat.reply.sport, 7000);
});

test('every captured line parses, including UPDATE events and IPv6', () => {
  const all = [...Object.values(captured), ...loopback];
  const types = all.map((l) => parseEventLine(l).type);
  assert.ok(types.includes('new') && types.includes('update') && types.includes('destroy'));
  assert.deepEqual(parseEventLine(captured.tcp6IngressFlushed).orig, { src: 'fd77::2', dst: 'fd77::1', sport: 44742, dport: 7003, packets: 5, bytes: 375 });
});

test('format variants: without timestamp or -o extended, [start=...] groups with spaces, zones, labels, unknown keys', () => {
  const plain = parseEventLine(' [DESTROY] udp      17 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 id=7');
  assert.equal(plain.timestampMs, undefined);
  assert.equal(plain.family, 4);
  const rich = parseEventLine(
    '[1.5]\t[DESTROY] ipv6     10 tcp      6 119 TIME_WAIT src=2001:DB8::1 dst=2001:db8::2 sport=1 dport=2 zone-orig=3 packets=1 bytes=2 ' +
      'src=2001:db8::2 dst=2001:db8::1 sport=2 dport=1 zone-reply=3 packets=3 bytes=4 [ASSURED] [OFFLOAD] mark=4294967295 secctx=system_u:object_r zone=3 ' +
      'delta-time=12 [start=Sun Nov 22 00:03:54 2026] [stop=Sun Nov 22 00:04:06 2026] helper=ftp use=1 id=4294967295 labels=a,b newkey=x',
  );
  assert.equal(rich.timestampMs, 1500);
  assert.equal(rich.orig.src, '2001:db8::1', 'addresses are canonicalised');
  assert.equal(rich.mark, 4294967295);
  assert.equal(rich.id, 4294967295);
  assert.equal(rich.deltaTimeS, 12);
  assert.deepEqual(rich.reply, { src: '2001:db8::2', dst: '2001:db8::1', sport: 2, dport: 1, packets: 3, bytes: 4 });
  const gre = parseEventLine('[NEW] ipv4 2 gre 47 30 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x0 src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x0 id=9');
  assert.equal(gre.proto, 'other');
  assert.equal(gre.protoNum, 47);
  const sctp = parseEventLine('[NEW] ipv4 2 sctp 132 3 CLOSED src=10.0.0.1 dst=10.0.0.2 sport=5 dport=6 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=6 dport=5 id=1');
  assert.equal(sctp.proto, 'sctp');
  assert.equal(sctp.state, 'CLOSED');
  const mapped = parseEventLine('[NEW] ipv6 10 udp 17 30 src=::ffff:10.0.0.1 dst=::ffff:10.0.0.2 sport=1 dport=2 src=::ffff:10.0.0.2 dst=::ffff:10.0.0.1 sport=2 dport=1 id=3');
  assert.equal(mapped.family, 6, 'an IPv4-mapped address stays in its IPv6 entry');
  assert.equal(mapped.orig.src, '10.0.0.1', 'but is written as IPv4, like every recorded address');
  assert.equal(parseEventLine(captured.tcpIngressNew + '\r').id, 2609621952);
});

test('refusals carry a stable reason', () => {
  const ok = 'src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1';
  rejects('', 'empty');
  rejects(' \t ', 'empty');
  rejects('x'.repeat(9000), 'too-long');
  rejects('conntrack v1.4.7 (conntrack-tools): 4 flow events have been shown.', 'bad-head');
  rejects('<?xml version="1.0" encoding="utf-8"?>', 'bad-head');
  rejects('[1.2] [CHANGE] ipv4 2 udp 17 ' + ok + ' id=1', 'bad-head');
  rejects('[NEW] ipv4 x udp 17 ' + ok + ' id=1', 'bad-head');
  rejects('[NEW] 17 ' + ok + ' id=1', 'bad-head');
  rejects('[NEW]', 'bad-head');
  rejects('[NEW] unknown 7 udp 17 ' + ok + ' id=1', 'bad-value');
  rejects('[NEW] ipv4 2 udp 17 ' + ok + ' id=1 [oops', 'bad-token');
  rejects('[NEW] ipv4 2 udp 17 ' + ok + ' garbage id=1', 'bad-token');
  rejects('[NEW] ipv4 2 udp 17 ' + ok + ' id=1 sport=3', 'bad-token');
  rejects('[NEW] ipv4 2 udp 17 src=10.0.0.256 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 id=1', 'bad-value');
  rejects('[NEW] ipv4 2 udp 17 src=10.0.0.1 dst=10.0.0.2 sport=65536 dport=2 src=10.0.0.2 dst=10.0.0.1 id=1', 'bad-value');
  rejects('[NEW] ipv4 2 udp 17 src=10.0.0.1 dst=10.0.0.2 sport=-1 dport=2 src=10.0.0.2 dst=10.0.0.1 id=1', 'bad-value');
  rejects('[NEW] ipv4 2 udp 17 ' + ok + ' id=4294967296', 'bad-value');
  rejects('[NEW] ipv4 2 udp 17 ' + ok + ' mark=0x10 id=1', 'bad-value');
  rejects('[NEW] ipv4 2 icmp 1 src=10.0.0.1 dst=10.0.0.2 type=256 code=0 id=1 src=10.0.0.2 dst=10.0.0.1 id=1', 'bad-value');
  rejects('[NEW] ipv4 2 udp 17 src=10.0.0.1 dst=10.0.0.2 dst=10.0.0.3 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 id=1', 'duplicate-field');
  rejects('[NEW] ipv4 2 udp 17 ' + ok + ' src=10.0.0.3 id=1', 'duplicate-field');
  rejects('[NEW] ipv4 2 udp 17 ' + ok + ' id=1 id=2', 'duplicate-field');
  rejects('[NEW] ipv4 2 udp 17 ' + ok, 'missing-field');
  rejects('[NEW] ipv4 2 udp 17 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 id=1', 'missing-field');
  rejects('[NEW] ipv4 2 udp 17 src=10.0.0.1 dst=10.0.0.2 src=10.0.0.2 dst=10.0.0.1 id=1', 'missing-field');
  rejects('[NEW] ipv4 2 icmp 1 src=10.0.0.1 dst=10.0.0.2 src=10.0.0.2 dst=10.0.0.1 id=1', 'missing-field');
  rejects('[NEW] ipv4 2 udp 17 src=10.0.0.1 dst=::1 sport=1 dport=2 src=::1 dst=10.0.0.1 sport=2 dport=1 id=1', 'bad-value');
  rejects('[NEW] ipv6 10 udp 17 ' + ok + ' id=1', 'bad-value');
  rejects('[NEW] ipv4 2 udp 17 src=[::1] dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 id=1', 'bad-value');
  rejects('[NEW] ipv4 2 udp 17 src=fe80::1%eth0 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 id=1', 'bad-value');
  rejects('[NEW] ipv4 2 udp 17 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 constructor=1 hasownproperty=1', 'missing-field');
  rejects('[NEW] ipv4 2 udp 17 ' + ok + ' __proto__=1 id=1', 'bad-token');
});

test('a line cut anywhere, or with any one token dropped, parses or throws only ConntrackLineError', () => {
  for (const line of [...Object.values(captured), ...loopback]) {
    for (let n = 0; n <= line.length; n++) {
      try {
        parseEventLine(line.slice(0, n));
      } catch (err) {
        assert.ok(err instanceof ConntrackLineError, `cut at ${n}: ${String(err)}`);
      }
    }
    const words = line.split(' ');
    for (let i = 0; i < words.length; i++) {
      try {
        parseEventLine([...words.slice(0, i), ...words.slice(i + 1)].join(' '));
      } catch (err) {
        assert.ok(err instanceof ConntrackLineError, `without word ${i}: ${String(err)}`);
      }
    }
  }
});

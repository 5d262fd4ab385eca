import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnverifiedReplyGuard } from '../../src/core/unverified-reply-guard.js';
import { DatagramOpener, DatagramSealer } from '../../src/protocol/tunnel/index.js';
import { SocketOpener, SocketSealer } from '../../src/datapath/socket-keys.js';
import type { UdpListener } from '../../src/datapath/udp-datapath.js';
import { AgentUdp, type KeySet } from '../../src/gateway/agent-udp.js';
import { newGatewayCounters } from '../../src/gateway/counters.js';
import { ManualClock } from '../helpers/manual-clock.js';

const UP = Buffer.alloc(32, 1);
const DOWN = Buffer.alloc(32, 2);

type Sent = { buf: Buffer; port: number; address: string }[];

/**
 * One connection's keys on both ends: the agent seals what the gateway's KeySet opens, and back.
 * The gateway's sealer sends data datagrams on a socket that records them in `sent`.
 */
function keys(keyId: number, agentKeyId: number, sent: Sent = []) {
  const socket = { send: (buf: Buffer, port: number, address: string) => void sent.push({ buf, port, address }) } as unknown as UdpListener;
  const gateway: KeySet = {
    keyId,
    opener: new SocketOpener({ key: UP, direction: 'agent-to-gateway', keyId }),
    sealer: new SocketSealer({ key: DOWN, direction: 'gateway-to-agent', peerKeyId: agentKeyId }, () => socket),
  };
  const agent = {
    sealer: new DatagramSealer({ key: UP, direction: 'agent-to-gateway', peerKeyId: keyId }),
    opener: new DatagramOpener({ key: DOWN, direction: 'gateway-to-agent', keyId: agentKeyId }),
  };
  return { gateway, agent };
}

function setup() {
  const clock = new ManualClock();
  const counters = newGatewayCounters();
  const sent: Sent = [];
  const exhausted: string[] = [];
  const udp = new AgentUdp({
    clock, counters, keepaliveIntervalMs: 1000, replies: new UnverifiedReplyGuard(),
    sendUdp: (buf, port, address) => void sent.push({ buf, port, address }),
    exhausted: (m) => void exhausted.push(m),
  });
  return { clock, counters, sent, exhausted, udp };
}

test('agent udp: only the newest authentic datagram under the newest keys moves the address', () => {
  const { counters, udp } = setup();
  const k = keys(11, 21);
  udp.add(k.gateway);
  const first = k.agent.sealer.sealData(5, Buffer.from('a'));
  const second = k.agent.sealer.sealData(5, Buffer.from('b'));
  assert.equal(udp.open(k.gateway, second, '203.0.113.1', 4000)?.payload.toString(), 'b');
  assert.deepEqual(udp.address, { address: '203.0.113.1', port: 4000 });
  // A delayed datagram (lower sequence) from elsewhere is delivered but does not move the address back.
  assert.equal(udp.open(k.gateway, first, '203.0.113.9', 4009)?.payload.toString(), 'a');
  assert.deepEqual(udp.address, { address: '203.0.113.1', port: 4000 });
  // A forgery from a new address moves nothing and is counted.
  const forged = Buffer.from(k.agent.sealer.sealData(5, Buffer.from('c')));
  forged[forged.length - 1]! ^= 1;
  assert.equal(udp.open(k.gateway, forged, '198.51.100.66', 6666), undefined);
  assert.equal(counters.datagramRejected['auth-failed'], 1);
  assert.deepEqual(udp.address, { address: '203.0.113.1', port: 4000 });
  // A newer connection's keys take over: datagrams under the old keys still open but move nothing.
  const k2 = keys(12, 22);
  udp.add(k2.gateway);
  assert.equal(udp.open(k.gateway, k.agent.sealer.sealData(5, Buffer.from('d')), '203.0.113.2', 4002)?.payload.toString(), 'd');
  assert.deepEqual(udp.address, { address: '203.0.113.1', port: 4000 });
  assert.equal(udp.open(k2.gateway, k2.agent.sealer.sealData(5, Buffer.from('e')), '203.0.113.2', 4002)?.payload.toString(), 'e');
  assert.deepEqual(udp.address, { address: '203.0.113.2', port: 4002 });
  assert.equal(counters.agentAddressMoves, 1);
  assert.equal(udp.currentKeyId, 12);
  assert.deepEqual(udp.keepNewest().map((x) => x.keyId), [11]);
  assert.deepEqual(udp.takeAll().map((x) => x.keyId), [12]);
});

test('agent udp: a keepalive is acked to its source under the newest keys; sends need a fresh address', () => {
  const { clock, sent, udp } = setup();
  const k = keys(11, 21, sent);
  udp.add(k.gateway);
  assert.equal(udp.send(1, Buffer.from('x'), undefined), false, 'no address yet');
  assert.equal(udp.open(k.gateway, k.agent.sealer.sealKeepalive(7), '203.0.113.1', 4000), undefined);
  assert.equal(sent.length, 1);
  const ack = k.agent.opener.open(sent[0]!.buf);
  assert.ok(ack.ok && ack.datagram.kind === 'keepalive-ack' && ack.datagram.counter === 7);
  assert.equal(udp.send(1, Buffer.from('x'), undefined), true);
  const data = k.agent.opener.open(sent[1]!.buf);
  assert.ok(data.ok && data.datagram.kind === 'data' && data.datagram.payload.toString() === 'x');
  assert.deepEqual([sent[1]!.address, sent[1]!.port], ['203.0.113.1', 4000]);
  clock.advance(3000);
  assert.equal(udp.fresh, false, 'three keepalive intervals without an authentic datagram');
  assert.equal(udp.send(1, Buffer.from('y'), undefined), false);
});

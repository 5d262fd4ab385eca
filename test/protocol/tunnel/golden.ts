import type { ControlMessage } from '../../../src/protocol/tunnel/index.js';

/**
 * Golden frames, written by hand from the layouts in docs/tunnel-protocol.md (not produced by the
 * encoder). Spaces separate the fields: u32 length | u8 type | body.
 */
export interface Golden {
  readonly name: string;
  readonly message: ControlMessage;
  readonly hex: string;
}

const seq = (n: number, from = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff));
const fill = (n: number, b: number) => Buffer.alloc(n, b);
const v4 = (address: string, port: number) => ({ address, port, family: 4 as const });

export const GOLDEN: readonly Golden[] = [
  {
    name: 'hello',
    message: { type: 'hello', version: 1, name: 'home', datagramKeyId: 0x01020304, resumeKeyId: 0, streamWindow: 0x40000 },
    hex: '00000014 01 0001 01020304 00000000 00040000 04 686f6d65',
  },
  {
    name: 'hello resuming',
    message: { type: 'hello', version: 1, name: 'a', datagramKeyId: 0xffffffff, resumeKeyId: 0x0badf00d, streamWindow: 0x7fffffff },
    hex: '00000011 01 0001 ffffffff 0badf00d 7fffffff 01 61',
  },
  {
    name: 'challenge',
    message: { type: 'challenge', nonce: seq(32) },
    hex: `00000021 02 ${seq(32).toString('hex')}`,
  },
  {
    name: 'auth',
    message: { type: 'auth', digest: fill(32, 0xaa) },
    hex: `00000021 03 ${'aa'.repeat(32)}`,
  },
  {
    name: 'auth-ok',
    message: { type: 'auth-ok', datagramKeyId: 0xdeadbeef, resumed: true, streamWindow: 65536, keepaliveIntervalMs: 25000, proof: fill(32, 0x55) },
    hex: `0000002e 04 deadbeef 01 00010000 000061a8 ${'55'.repeat(32)}`,
  },
  {
    name: 'auth-error',
    message: { type: 'auth-error', code: 'wrong-token', message: 'bad' },
    hex: '00000007 05 02 0003 626164',
  },
  {
    name: 'auth-error unknown-agent, UTF-8 message',
    message: { type: 'auth-error', code: 'unknown-agent', message: 'é' },
    hex: '00000006 05 01 0002 c3a9',
  },
  {
    name: 'goaway',
    message: { type: 'goaway', code: 'superseded', message: '' },
    hex: '00000004 06 0d 0000',
  },
  {
    name: 'publish',
    message: { type: 'publish', serviceId: 7, name: 'ssh', transport: 'tcp', remote: v4('0.0.0.0', 20002), proxyProtocol: 'v2' },
    hex: '00000010 10 0007 01 03 04 4e22 00000000 03 737368',
  },
  {
    name: 'publish udp on IPv6, no PROXY header',
    message: { type: 'publish', serviceId: 0xffff, name: 'wg', transport: 'udp', remote: { address: '::', port: 0, family: 6 }, proxyProtocol: 'off' },
    hex: `0000001b 10 ffff 02 01 06 0000 ${'00'.repeat(16)} 02 7767`,
  },
  {
    name: 'publish-ok',
    message: { type: 'publish-ok', serviceId: 7, bound: { address: '::1', port: 20002, family: 6 } },
    hex: '00000016 11 0007 06 4e22 00000000000000000000000000000001',
  },
  {
    name: 'publish-error',
    message: { type: 'publish-error', serviceId: 7, code: 'port-outside-range', message: 'range 20000-20100' },
    hex: '00000017 12 0007 05 0011 72616e67652032303030302d3230313030',
  },
  {
    name: 'publish-error port-in-use',
    message: { type: 'publish-error', serviceId: 1, code: 'port-in-use', message: '' },
    hex: '00000006 12 0001 06 0000',
  },
  { name: 'unpublish', message: { type: 'unpublish', serviceId: 7 }, hex: '00000003 13 0007' },
  {
    name: 'publish joining pool "ha", health reported',
    message: {
      type: 'publish', serviceId: 1, name: 'wg', transport: 'udp', remote: v4('0.0.0.0', 20001), proxyProtocol: 'off',
      pool: { group: 'ha', proof: fill(32, 0x77), healthReported: true },
    },
    hex: `00000033 10 0001 02 01 04 4e21 00000000 02 7767 0c 02 6861 ${'77'.repeat(32)}`,
  },
  {
    name: 'publish joining pool "g", no health',
    message: {
      type: 'publish', serviceId: 2, name: 'ssh', transport: 'tcp', remote: v4('0.0.0.0', 22), proxyProtocol: 'off',
      pool: { group: 'g', proof: seq(32), healthReported: false },
    },
    hex: `00000033 10 0002 01 01 04 0016 00000000 03 737368 04 01 67 ${seq(32).toString('hex')}`,
  },
  { name: 'service-health up', message: { type: 'service-health', serviceId: 3, up: true, message: 'ok' }, hex: '00000008 15 0003 01 0002 6f6b' },
  { name: 'service-health down', message: { type: 'service-health', serviceId: 0xffff, up: false, message: '' }, hex: '00000006 15 ffff 02 0000' },
  {
    name: 'stream-open',
    message: { type: 'stream-open', streamId: 2, serviceId: 7, client: v4('198.51.100.7', 40000), server: v4('203.0.113.1', 20002) },
    hex: '00000015 20 00000002 0007 04 9c40 c6336407 04 4e22 cb007101',
  },
  { name: 'stream-accept', message: { type: 'stream-accept', streamId: 2 }, hex: '00000005 21 00000002' },
  { name: 'stream-data', message: { type: 'stream-data', streamId: 2, data: Buffer.from('hi') }, hex: '00000007 22 00000002 6869' },
  { name: 'stream-end', message: { type: 'stream-end', streamId: 0xfffffffe }, hex: '00000005 23 fffffffe' },
  { name: 'stream-reset', message: { type: 'stream-reset', streamId: 2, code: 'refused' }, hex: '00000006 24 00000002 01' },
  { name: 'stream-reset flow-control', message: { type: 'stream-reset', streamId: 3, code: 'flow-control' }, hex: '00000006 24 00000003 05' },
  { name: 'window-update', message: { type: 'window-update', streamId: 2, increment: 32768 }, hex: '00000009 25 00000002 00008000' },
  {
    name: 'datagram with origin',
    message: { type: 'datagram', tag: 1, origin: { serviceId: 7, client: v4('198.51.100.7', 40000) }, payload: Buffer.from('x') },
    hex: '00000010 30 00000001 01 0007 04 9c40 c6336407 78',
  },
  {
    name: 'datagram with IPv6 origin',
    message: { type: 'datagram', tag: 2, origin: { serviceId: 1, client: { address: '2001:db8::5', port: 443, family: 6 } }, payload: Buffer.alloc(0) },
    hex: '0000001b 30 00000002 01 0001 06 01bb 20010db8000000000000000000000005',
  },
  { name: 'datagram, empty, no origin', message: { type: 'datagram', tag: 0x10000, origin: undefined, payload: Buffer.alloc(0) }, hex: '00000006 30 00010000 00' },
  { name: 'datagram-close', message: { type: 'datagram-close', tag: 1 }, hex: '00000005 31 00000001' },
  { name: 'ping', message: { type: 'ping', counter: 0xffffffff }, hex: '00000005 40 ffffffff' },
  { name: 'pong', message: { type: 'pong', counter: 1 }, hex: '00000005 41 00000001' },
  {
    name: 'offer',
    message: { type: 'offer', serviceId: 7, name: 'ssh', transport: 'tcp', peers: ['laptop', 'ci'] },
    hex: '00000013 14 0007 01 03 737368 02 06 6c6170746f70 02 6369',
  },
  { name: 'offer, no peers (withdrawn)', message: { type: 'offer', serviceId: 1, name: 'wg', transport: 'udp', peers: [] }, hex: '00000008 14 0001 02 02 7767 00' },
  {
    name: 'peer-open udp',
    message: { type: 'peer-open', tag: 0x80000001, transport: 'udp', peer: 'home', service: 'wg' },
    hex: '0000000e 52 80000001 02 04 686f6d65 02 7767',
  },
  {
    name: 'peer-open tcp (the odd stream id)',
    message: { type: 'peer-open', tag: 3, transport: 'tcp', peer: 'home', service: 'ssh' },
    hex: '0000000f 52 00000003 01 04 686f6d65 03 737368',
  },
  { name: 'peer-open-ok', message: { type: 'peer-open-ok', tag: 0x80000001, peerTag: 5 }, hex: '00000009 53 80000001 00000005' },
  {
    name: 'peer-flow',
    message: { type: 'peer-flow', tag: 5, origin: { serviceId: 2, client: { address: '192.0.2.7', port: 40000, family: 4 } }, peer: 'laptop' },
    hex: '00000015 55 00000005 0002 04 9c40 c0000207 06 6c6170746f70',
  },
  {
    name: 'peer-open-error',
    message: { type: 'peer-open-error', tag: 0x80000001, code: 'not-allowed', message: 'no' },
    hex: '0000000a 54 80000001 09 0002 6e6f',
  },
  { name: 'signal', message: { type: 'signal', peer: 'office', payload: Buffer.from('{}') }, hex: '0000000a 50 06 6f6666696365 7b7d' },
  { name: 'signal, empty payload', message: { type: 'signal', peer: 'b', payload: Buffer.alloc(0) }, hex: '00000003 50 01 62' },
  { name: 'signal-error', message: { type: 'signal-error', peer: 'office', code: 'peer-offline' }, hex: '00000009 51 0c 06 6f6666696365' },
];

export const hexBytes = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyPeer, defaultAllowLoopback, defaultAllowPrivate, peerPolicy } from '../../src/udpexposer/peer-policy.js';
import { recordingServer } from './helpers.js';

const cases: [string, number, string][] = [
  ['1.0.0.1', 5, 'public'],
  ['2606:4700::1111', 5, 'public'],
  ['198.51.100.1', 5, 'reserved'],
  ['2001:db8::5', 5, 'reserved'],
  ['192.88.99.1', 5, 'reserved'],
  ['168.63.129.16', 80, 'metadata'],
  ['100.100.100.200', 80, 'metadata'],
  ['fec0::1', 5, 'private'],
  ['127.0.0.1', 5, 'loopback'],
  ['::ffff:127.0.0.1', 5, 'loopback'],
  ['::1', 5, 'loopback'],
  ['10.1.2.3', 5, 'private'],
  ['172.31.0.1', 5, 'private'],
  ['192.168.1.1', 5, 'private'],
  ['100.64.0.1', 5, 'private'],
  ['fd12::1', 5, 'private'],
  ['64:ff9b::a00:1', 5, 'private'],
  ['2002:a00:1::1', 5, 'private'],
  ['169.254.1.1', 5, 'link-local'],
  ['fe80::1%lo', 5, 'link-local'],
  ['169.254.169.254', 80, 'metadata'],
  ['::ffff:169.254.169.254', 80, 'metadata'],
  ['64:ff9b::a9fe:a9fe', 80, 'metadata'],
  ['fd00:ec2::254', 80, 'metadata'],
  ['0.0.0.0', 5, 'unusable'],
  ['::', 5, 'unusable'],
  ['224.0.0.1', 5, 'unusable'],
  ['255.255.255.255', 5, 'unusable'],
  ['ff02::1', 5, 'unusable'],
  ['1.0.0.1', 0, 'unusable'],
  ['not-an-ip', 5, 'unusable'],
];

for (const [address, port, want] of cases) {
  test(`${address}:${port} is ${want}`, () => assert.equal(classifyPeer(address, port), want));
}

test('strict policy: public only; allowPrivate adds private and link-local, allowLoopback loopback, never metadata', () => {
  const strict = peerPolicy({ allowPrivate: false, allowLoopback: false });
  const lax = peerPolicy({ allowPrivate: true, allowLoopback: false });
  const loop = peerPolicy({ allowPrivate: false, allowLoopback: true });
  assert.ok(strict('1.0.0.1', 1) && !lax('198.51.100.1', 1) && !lax('168.63.129.16', 80), 'reserved and metadata peers are never answered');
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '64:ff9b::7f00:1']) {
    assert.ok(!strict(a, 1) && !lax(a, 1), `${a} is refused unless loopback is allowed`);
    assert.ok(loop(a, 1), `${a} is allowed with allowLoopback`);
  }
  assert.ok(!strict('10.0.0.1', 1) && lax('10.0.0.1', 1) && lax('fe80::1', 1) && !loop('10.0.0.1', 1));
  assert.ok(!lax('169.254.169.254', 80) && !lax('0.0.0.0', 1) && !lax('224.0.0.1', 1));
});

test('the server refuses loopback peers unless its policy allows them', () => {
  const s = recordingServer();
  s.core.handleDatagram(Buffer.alloc(0), '127.0.0.1', 4000);
  s.core.handleDatagram(Buffer.from('x'), '::1', 4001);
  assert.equal(s.core.client, undefined);
  assert.equal(s.core.counters.dropped['peer-denied'], 2);
  const opted = recordingServer({ peerPolicy: peerPolicy({ allowPrivate: false, allowLoopback: true }) });
  opted.core.handleDatagram(Buffer.alloc(0), '127.0.0.1', 4000);
  assert.deepEqual(opted.core.client, { address: '127.0.0.1', port: 4000, authenticated: false });
});

test('loopback peers are expected by default only when bound to a loopback address', () => {
  assert.equal(defaultAllowLoopback('0.0.0.0'), false);
  assert.equal(defaultAllowLoopback('::'), false);
  assert.equal(defaultAllowLoopback('192.168.1.10'), false);
  assert.equal(defaultAllowLoopback('127.0.0.1'), true);
  assert.equal(defaultAllowLoopback('::1'), true);
});

test('private peers are expected by default only when bound to a private address', () => {
  assert.equal(defaultAllowPrivate('0.0.0.0'), false);
  assert.equal(defaultAllowPrivate('::'), false);
  assert.equal(defaultAllowPrivate('127.0.0.1'), false);
  assert.equal(defaultAllowPrivate('192.168.1.10'), true);
  assert.equal(defaultAllowPrivate('fe80::1'), true);
});

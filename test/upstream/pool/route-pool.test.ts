// A route's pool from its config: names resolved and re-resolved on their TTL (each address a
// member), changes joining and draining members; the dialers of a route follow its pool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventStream } from '../../../src/observe/events.js';
import { RoutePool } from '../../../src/upstream/pool/route-pool.js';
import type { NameResolver } from '../../../src/upstream/pool/name-members.js';
import type { PoolSpec } from '../../../src/config/pool-schema.js';
import { DirectStreamDialer } from '../../../src/upstream/direct/tcp-dialer.js';
import { DirectDatagramDialer } from '../../../src/upstream/direct/udp-dialer.js';
import { ManualClock } from '../../helpers/manual-clock.js';

const turn = () => new Promise((r) => setImmediate(r));

const spec = (members: PoolSpec['members']): PoolSpec => ({
  members,
  balance: 'round-robin',
  passive: { ejectMs: 1000, maxEjectMs: 1000, silentDatagrams: 0, silentMs: 1000 },
  failover: 'move',
});

test('names: each address is a member labelled name/ip:port, re-resolved at the TTL (at least 5 s), dropped addresses drain', async () => {
  const clock = new ManualClock();
  const answers: { address: string; family: 4 | 6; ttl: number }[][] = [
    [{ address: '192.0.2.1', family: 4, ttl: 1 }, { address: '2001:db8::1', family: 6, ttl: 60 }],
    [{ address: '192.0.2.2', family: 4, ttl: 60 }, { address: '2001:db8::1', family: 6, ttl: 60 }],
  ];
  const asked: string[] = [];
  const resolver: NameResolver = async (host) => {
    asked.push(host);
    return answers[Math.min(asked.length - 1, answers.length - 1)]!;
  };
  const p = await RoutePool.start('r', 'udp', spec([{ host: 'game.example.net', port: 27015, weight: 2, backup: false }, { host: '198.51.100.7', port: 27015, weight: 1, backup: true }]), {
    clock,
    events: new EventStream(),
    stream: new DirectStreamDialer(),
    datagram: new DirectDatagramDialer(),
    resolver,
  });
  const labels = () => p.pool.view().members.map((m) => `${m.label}:${m.health}:${m.weight}${m.backup ? 'b' : ''}`);
  assert.deepEqual(labels(), ['game.example.net/192.0.2.1:27015:up:2', 'game.example.net/[2001:db8::1]:27015:up:2', '198.51.100.7:27015:up:1b']);
  clock.advance(4999);
  await turn();
  assert.equal(asked.length, 1, 'a TTL of 1 s is held to 5 s');
  clock.advance(1);
  await turn();
  await turn();
  assert.equal(asked.length, 2);
  assert.deepEqual(labels(), ['game.example.net/[2001:db8::1]:27015:up:2', '198.51.100.7:27015:up:1b', 'game.example.net/192.0.2.2:27015:up:2']);
  p.close();
});

test('names: a failed resolution keeps the members it had and tries again after 30 s', async () => {
  const clock = new ManualClock();
  let calls = 0;
  const resolver: NameResolver = async () => {
    calls++;
    if (calls > 1) throw new Error('SERVFAIL');
    return [{ address: '192.0.2.1', family: 4, ttl: 10 }];
  };
  const p = await RoutePool.start('r', 'tcp', spec([{ host: 'db.example.net', port: 5432, weight: 1, backup: false }]), { clock, events: new EventStream(), stream: new DirectStreamDialer(), datagram: new DirectDatagramDialer(), resolver });
  clock.advance(10_000);
  await turn();
  assert.equal(calls, 2);
  assert.equal(p.pool.view().members.length, 1);
  clock.advance(29_999);
  await turn();
  assert.equal(calls, 2);
  clock.advance(1);
  await turn();
  assert.equal(calls, 3);
  p.close();
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/core/clock.js';
import { EventStream } from '../../src/observe/events.js';
import { parseRedisUrl } from '../../src/config/redis-url.js';
import type { FleetSettings } from '../../src/config/fleet-settings.js';
import { Fleet } from '../../src/fleet/fleet.js';
import { startRedis, type RedisPeer } from '../helpers/redis.js';
import { waitFor } from '../helpers/net.js';

function fleetSettings(redis: RedisPeer, name: string, over: Partial<FleetSettings> = {}): FleetSettings {
  const target = parseRedisUrl(redis.url);
  if (typeof target === 'string') throw new Error(target);
  return {
    name,
    redis: target,
    keyPrefix: 'sluice:',
    heartbeatMs: 200,
    ttlMs: 1000,
    onRedisDown: 'local',
    publicAddresses: [`127.0.0.1:${7000 + name.length}`],
    limits: { maxPerSource: 0, ratePerSource: 0, rateWindowMs: 1000 },
    ...over,
  };
}

/** A fleet member without a gateway: its agents are whatever the test puts in the set. */
async function member(t: { after: (fn: () => unknown) => void }, redis: RedisPeer, name: string, over: Partial<FleetSettings> = {}) {
  const agents = new Set<string>();
  const events = new EventStream((err) => {
    throw err;
  });
  const warnings: string[] = [];
  const ac = new AbortController();
  const fleet = await Fleet.start(fleetSettings(redis, name, over), {
    clock: systemClock,
    events,
    version: 'test',
    local: { agents: () => agents, load: () => ({ agents: agents.size, sessions: 0 }), agentPort: () => 7000 },
    warn: (_f, m) => warnings.push(m),
    connectWaitMs: 1000,
  }, ac.signal);
  t.after(() => fleet.close());
  return { fleet, agents, events, warnings, ac };
}

const names = (f: Fleet) => f.membership.view.map((g) => g.name);

test('three gateways register and see each other, with their agents', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await member(t, redis, 'gw-a');
  const b = await member(t, redis, 'gw-b');
  const c = await member(t, redis, 'gw-c');
  a.agents.add('alpha');
  b.agents.add('alpha');
  b.agents.add('beta');
  await Promise.all([a.fleet.membership.beat(), b.fleet.membership.beat(), c.fleet.membership.beat()]);
  await a.fleet.membership.beat();
  assert.deepEqual(names(a.fleet), ['gw-a', 'gw-b', 'gw-c']);
  const view = await a.fleet.view();
  assert.equal(view.status, 'ok');
  assert.deepEqual(view.agents, [{ name: 'alpha', gateways: ['gw-a', 'gw-b'] }, { name: 'beta', gateways: ['gw-b'] }]);
  assert.equal(view.gateways.find((g) => g.name === 'gw-b')!.load.agents, 2);
  assert.deepEqual(await c.fleet.membership.gatewaysOf('beta'), ['gw-b']);

  // An agent leaving is removed from its gateway's presence at the next beat.
  b.agents.delete('alpha');
  await b.fleet.membership.beat();
  assert.deepEqual(await a.fleet.membership.gatewaysOf('alpha'), ['gw-a']);

  // A gateway closing deregisters at once; one that dies silently leaves within the TTL.
  await c.fleet.close();
  await a.fleet.membership.beat();
  assert.deepEqual(names(a.fleet), ['gw-a', 'gw-b']);
  b.ac.abort(); // the link closes without deregistering, as when a gateway dies
  await waitFor(() => b.fleet.link.status === 'degraded', 'b link closed');
  await waitFor(() => !names(a.fleet).includes('gw-b'), 'gw-b to lapse from the view', 3000);
  assert.deepEqual(await a.fleet.membership.gatewaysOf('beta'), []);
});

test('Redis killed: gateways keep their view degraded; Redis back empty: they re-register without duplicates', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await member(t, redis, 'gw-a');
  const b = await member(t, redis, 'gw-b');
  a.agents.add('alpha');
  await a.fleet.membership.beat();
  await b.fleet.membership.beat();
  assert.deepEqual(names(b.fleet), ['gw-a', 'gw-b']);

  await redis.kill();
  await waitFor(() => a.fleet.link.status === 'degraded' && b.fleet.link.status === 'degraded', 'links degraded');
  assert.equal(a.fleet.health().status, 'degraded');
  assert.ok(a.fleet.health().error);
  await a.fleet.membership.beat();
  assert.ok(names(a.fleet).includes('gw-a'), 'a gateway always shows itself');

  await redis.restart();
  await waitFor(() => a.fleet.link.status === 'ok' && b.fleet.link.status === 'ok', 'links ok again', 8000);
  await waitFor(() => names(a.fleet).join() === 'gw-a,gw-b' && names(b.fleet).join() === 'gw-a,gw-b', 'view reconverged', 5000);
  // Presence is rewritten by a's heartbeat after the link came back; b may read between a's writes.
  let view = await b.fleet.view();
  for (const until = Date.now() + 3000; (view.agents?.length ?? 0) === 0 && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, 50));
    view = await b.fleet.view();
  }
  assert.deepEqual(view.agents, [{ name: 'alpha', gateways: ['gw-a'] }]);
  // Exactly one registration per gateway, one index entry each.
  const members = await redis.command('ZRANGE', 'sluice:gateways', '0', '-1');
  assert.equal(members.match(/gw-a/g)?.length, 1);
  assert.equal(members.match(/gw-b/g)?.length, 1);
  assert.equal(a.warnings.filter((w) => w.includes('unreachable')).length >= 1, true);
});

test('two processes claiming one name are reported, not merged', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await member(t, redis, 'gw-a');
  const twin = await member(t, redis, 'gw-a');
  await a.fleet.membership.beat();
  await twin.fleet.membership.beat();
  await a.fleet.membership.beat();
  assert.ok(a.fleet.health().nameConflict ?? twin.fleet.health().nameConflict);
});

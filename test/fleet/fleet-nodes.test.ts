import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { request } from '../admin/app-helper.js';
import { ADMIN, auth, gatewayNode } from './helpers.js';
import { clientSockets, echoUpstream, ended } from '../bans/helpers.js';
import { waitFor } from '../helpers/net.js';
import { startRedis } from '../helpers/redis.js';
import { runSluice } from '../helpers/cli.js';

/** Opens a connection and reports whether bytes echo back (true) or the relay closes it (false). */
async function echoes(sockets: net.Socket[], port: number, keep = false): Promise<{ ok: boolean; socket: net.Socket }> {
  const s = net.connect(port, '127.0.0.1');
  sockets.push(s);
  await once(s, 'connect');
  s.write('ping');
  const ok = await Promise.race([new Promise<boolean>((resolve) => s.once('data', () => resolve(true))), ended(s).then(() => false)]);
  if (!keep) s.destroy();
  return { ok, socket: s };
}

test('fleet: two gateways see each other in /api/fleet and /api/health', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const up = await echoUpstream(t);
  const a = await gatewayNode(t, redis, 'gw-a', up.port);
  const b = await gatewayNode(t, redis, 'gw-b', up.port);
  let view: { gateways: { name: string; alive: boolean; agentPort: number }[]; status: string } | undefined;
  const end = Date.now() + 5000;
  while (Date.now() < end) {
    const r = await request(`${b.admin()}/api/fleet`, { headers: auth });
    assert.equal(r.status, 200);
    view = JSON.parse(r.body) as typeof view;
    if (view!.gateways.length === 2) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(view!.gateways.map((g) => [g.name, g.alive]), [['gw-a', true], ['gw-b', true]]);
  assert.equal(view!.gateways[0]!.agentPort, a.app.exposure.gateway!.tcpAddress.port);
  const health = JSON.parse((await request(`${a.admin()}/api/health`, { headers: auth })).body) as { status?: string; fleet: { status: string; name: string } };
  assert.equal(health.status, 'ok');
  assert.deepEqual([health.fleet.status, health.fleet.name], ['ok', 'gw-a']);

  // sluice status --fleet on either gateway shows both; plain status has the FLEET line.
  const env = { SLUICE_ADMIN: '', SLUICE_ADMIN_TOKEN: ADMIN };
  const cli = runSluice(t, ['status', '--fleet', '--admin', a.admin()], env);
  assert.equal(await cli.exited, 0, cli.err());
  assert.match(cli.out(), /^gw-a \(this\)\s+yes\s+0\s+0\s+127\.0\.0\.1:\d+/m);
  assert.match(cli.out(), /^gw-b\s+yes\s+0\s+0\s+127\.0\.0\.1:\d+/m);
  const json = runSluice(t, ['status', '--fleet', '--json', '--admin', b.admin()], env);
  assert.equal(await json.exited, 0, json.err());
  assert.deepEqual((JSON.parse(json.out()) as { gateways: { name: string }[] }).gateways.map((g) => g.name), ['gw-a', 'gw-b']);
  const plain = runSluice(t, ['status', '--admin', a.admin()], env);
  assert.equal(await plain.exited, 0, plain.err());
  assert.match(plain.out(), /^FLEET: gw-a ok, 2 gateway\(s\), Redis redis:\/\/127\.0\.0\.1:\d+\/0$/m);
});

test('fleet: a client alternating gateways meets the fleet rate, not twice it', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const sockets = clientSockets(t);
  const up = await echoUpstream(t);
  const limits = `    limits: { ratePerSource: { sessions: 6, per: 60s } }`;
  const a = await gatewayNode(t, redis, 'gw-a', up.port, limits);
  const b = await gatewayNode(t, redis, 'gw-b', up.port, limits);
  const results: boolean[] = [];
  const settled = () => waitFor(() => [a, b].every((n) => n.app.fleet!.limits.snapshot().pending === 0), 'rate consumes answered');
  for (let i = 0; i < 12; i++) {
    results.push((await echoes(sockets, i % 2 === 0 ? a.echoPort : b.echoPort)).ok);
    await settled();
    // The sixth took the last point: its gateway publishes the block; both hold it before the next try.
    if (i === 5) await waitFor(() => [a, b].every((n) => n.app.fleet!.limits.snapshot().blocked === 1), 'block published to both');
  }
  // Six admitted across both gateways (the fleet limit), then every attempt refused on both.
  assert.deepEqual(results, [true, true, true, true, true, true, false, false, false, false, false, false]);
  assert.ok(a.rejected().every((e) => e.reason === 'fleet-source-rate'));
  assert.ok(b.rejected().length > 0 && b.rejected().every((e) => e.reason === 'fleet-source-rate'));
});

test('fleet: a per-source cap holds across two gateways; closing a session frees a place on either', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const sockets = clientSockets(t);
  const up = await echoUpstream(t);
  const limits = `    limits: { maxPerSource: 3 }`;
  const a = await gatewayNode(t, redis, 'gw-a', up.port, limits);
  const b = await gatewayNode(t, redis, 'gw-b', up.port, limits);
  const held: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await echoes(sockets, i % 2 === 0 ? a.echoPort : b.echoPort, true);
    assert.ok(r.ok, `session ${i} admitted`);
    held.push(r.socket);
  }
  // The third session made the fleet total 3: the full verdict reaches the other gateway by pub/sub.
  await waitFor(() => fleetFull(a) && fleetFull(b), 'both gateways hold the source full');
  assert.equal((await echoes(sockets, b.echoPort)).ok, false);
  assert.equal((await echoes(sockets, a.echoPort)).ok, false);
  assert.deepEqual([...new Set([...a.rejected(), ...b.rejected()].map((e) => e.reason))], ['fleet-source-sessions']);
  // One session on gw-a ends: the source may open one more, on gw-b.
  held[0]!.destroy();
  await waitFor(() => !fleetFull(a) && !fleetFull(b), 'both gateways see a free place');
  assert.equal((await echoes(sockets, b.echoPort, true)).ok, true);
});

/** Whether this gateway holds the (one) client source as full across the fleet now. */
function fleetFull(n: Awaited<ReturnType<typeof gatewayNode>>): boolean {
  return n.app.fleet!.limits.snapshot().full > 0;
}

/** A connection from `from` (another loopback address is another client) that echoes once. */
async function heldFrom(sockets: net.Socket[], port: number, from: string): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
  sockets.push(s);
  await once(s, 'connect');
  s.write('ping');
  await once(s, 'data');
  return s;
}

test('fleet: a ban raised through gateway A\'s API refuses the client on B within 1 s and ends its live session there; lifting it lifts it on B', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const sockets = clientSockets(t);
  const up = await echoUpstream(t);
  const a = await gatewayNode(t, redis, 'gw-a', up.port);
  const b = await gatewayNode(t, redis, 'gw-b', up.port);
  const live = await heldFrom(sockets, b.echoPort, '127.0.0.3');
  const liveEnded = ended(live);
  const raisedAt = Date.now();
  const r = await request(`${a.admin()}/api/bans`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ address: '127.0.0.3', duration: '1h', reason: 'abuse' }) });
  assert.equal(r.status, 201, r.body);
  await liveEnded;
  assert.ok(Date.now() - raisedAt < 1000, `live session on B ended ${Date.now() - raisedAt} ms after the ban`);
  const endedEvent = b.seen.find((e) => e.type === 'session-ended' && e.flow.client.address === '127.0.0.3');
  assert.equal(endedEvent?.type === 'session-ended' && endedEvent.reason, 'banned');
  const ban = b.app.bans.store.get('127.0.0.3');
  assert.deepEqual([ban?.source, ban?.reason], ['api', 'abuse']);
  assert.equal(ban?.expiresAt, a.app.bans.store.get('127.0.0.3')?.expiresAt, 'the same ban, same end, on both');
  // A new connection from the client on B is refused as banned; another client is not.
  const s = net.connect({ port: b.echoPort, host: '127.0.0.1', localAddress: '127.0.0.3' });
  sockets.push(s);
  await ended(s);
  assert.equal(b.rejected().at(-1)?.reason, 'banned');
  await heldFrom(sockets, b.echoPort, '127.0.0.4');

  const del = await request(`${a.admin()}/api/bans?address=127.0.0.3`, { method: 'DELETE', headers: auth });
  assert.ok(del.status === 200 || del.status === 204, del.body);
  await waitFor(() => b.app.bans.store.get('127.0.0.3') === undefined, 'ban lifted on B', 1000);
  await heldFrom(sockets, b.echoPort, '127.0.0.3');
});

test('fleet: a gateway starting later adopts the fleet\'s bans from Redis', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const up = await echoUpstream(t);
  const a = await gatewayNode(t, redis, 'gw-a', up.port);
  assert.ok(typeof a.app.bans.add({ target: '192.0.2.0/24', source: 'api', reason: 'scan', durationMs: 3_600_000 }) === 'object');
  await waitFor(() => a.app.fleet!.bans!.counters.published === 1, 'published');
  const b = await gatewayNode(t, redis, 'gw-b', up.port);
  assert.equal(b.app.bans.store.get('192.0.2.0/24')?.reason, 'scan');
});

test('fleet: Redis killed: service goes on, health degraded; onRedisDown local keeps per-gateway limits, deny refuses new sessions; Redis back empty: reconverges', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const sockets = clientSockets(t);
  const up = await echoUpstream(t);
  const local = await gatewayNode(t, redis, 'gw-local', up.port, `    onRedisDown: local\n    limits: { ratePerSource: { sessions: 3, per: 60s } }`);
  const deny = await gatewayNode(t, redis, 'gw-deny', up.port, `    onRedisDown: deny\n    limits: { maxPerSource: 100 }`);
  const kept = await heldFrom(sockets, deny.echoPort, '127.0.0.5');
  assert.equal(typeof local.app.bans.add({ target: '198.51.100.9', source: 'api', reason: 'kept', durationMs: 3_600_000 }), 'object');
  await waitFor(() => deny.app.bans.store.get('198.51.100.9') !== undefined, 'ban adopted before the outage');
  await redis.kill();
  await waitFor(() => local.app.fleet!.link.status === 'degraded' && deny.app.fleet!.link.status === 'degraded', 'both degraded');
  const health = JSON.parse((await request(`${local.admin()}/api/health`, { headers: auth })).body) as { status: string; fleet: { status: string } };
  assert.deepEqual([health.status, health.fleet.status], ['degraded', 'degraded']);

  // local: the in-memory insurance limiter counts for this gateway alone (3 per minute here).
  const results: boolean[] = [];
  for (let i = 0; i < 5; i++) results.push((await echoes(sockets, local.echoPort)).ok);
  await waitFor(() => local.app.fleet!.limits.snapshot().blocked === 1, 'insurance limiter blocked the source');
  results.push((await echoes(sockets, local.echoPort)).ok);
  assert.deepEqual(results.slice(0, 3), [true, true, true]);
  assert.equal(results.at(-1), false);
  // deny: new sessions are refused; the live one goes on.
  assert.equal((await echoes(sockets, deny.echoPort)).ok, false);
  assert.equal(deny.rejected().at(-1)?.reason, 'fleet-unavailable');
  kept.write('still');
  assert.equal(String((await once(kept, 'data'))[0]), 'still');

  await redis.restart();
  await waitFor(() => local.app.fleet!.link.status === 'ok' && deny.app.fleet!.link.status === 'ok', 'both ok again', 8000);
  const back = Date.now();
  const fresh = (n: typeof local) => n.app.fleet!.membership.viewAt >= back && n.app.fleet!.membership.view.length === 2;
  await waitFor(() => fresh(local) && fresh(deny), 'view reconverged', 5000);
  const body = JSON.parse((await request(`${deny.admin()}/api/fleet`, { headers: auth })).body) as { gateways: { name: string; alive: boolean }[] };
  assert.deepEqual(body.gateways.map((g) => [g.name, g.alive]), [['gw-deny', true], ['gw-local', true]]);
  assert.equal((await redis.command('ZCARD', 'sluice:gateways')).trim(), ':2', 'one registration each');
  assert.equal((await echoes(sockets, deny.echoPort)).ok, true);
  // The live session's count and the ban were written back into the empty Redis.
  const cap = await redis.command('HGET', 'sluice:cap:127.0.0.5', 'gw-deny');
  assert.match(cap, /\$1\r\n1\r\n/);
  assert.match(await redis.command('HGET', 'sluice:bans', '198.51.100.9'), /"reason":"kept"/);
});

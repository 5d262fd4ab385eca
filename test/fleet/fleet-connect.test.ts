import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { systemClock } from '../../src/core/clock.js';
import { EventStream } from '../../src/observe/events.js';
import { parseRedisUrl } from '../../src/config/redis-url.js';
import type { FleetRedisTarget } from '../../src/config/fleet-settings.js';
import { Fleet } from '../../src/fleet/fleet.js';
import { havePeer, tempDir } from '../helpers/peers.js';
import { startRedis } from '../helpers/redis.js';

/** One fleet member reaching Redis at `url` (with `tls` for rediss://); closed when the test ends. */
async function member(t: { after: (fn: () => unknown) => void }, url: string, tls?: FleetRedisTarget['tls']) {
  const target = parseRedisUrl(url);
  if (typeof target === 'string') throw new Error(target);
  const ac = new AbortController();
  const fleet = await Fleet.start(
    { name: 'gw-a', redis: { ...target, ...(tls ? { tls } : {}) }, keyPrefix: 'sluice:', heartbeatMs: 200, ttlMs: 1000, onRedisDown: 'local', publicAddresses: ['127.0.0.1:7000'], limits: { maxPerSource: 0, ratePerSource: 0, rateWindowMs: 1000 } },
    { clock: systemClock, events: new EventStream(() => {}), version: 'test', local: { agents: () => ['home'], load: () => ({ agents: 1, sessions: 0 }), agentPort: () => 7000 }, warn: () => {}, connectWaitMs: 3000 },
    ac.signal,
  );
  t.after(() => fleet.close());
  return fleet;
}

test('fleet over a Sentinel: redis+sentinel:// finds the master and registers there', async (t) => {
  const master = await startRedis(t);
  if (!master) return;
  const dir = await tempDir(t, 'sluice-sentinel-');
  const conf = join(dir, 'sentinel.conf');
  await writeFile(conf, `sentinel monitor mymaster 127.0.0.1 ${master.port} 1\n`);
  const sentinel = await startRedis(t, { args: (port) => [conf, '--sentinel', '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no'] });
  if (!sentinel) return;
  const fleet = await member(t, `redis+sentinel://127.0.0.1:${sentinel.port}/mymaster/0`);
  assert.equal(fleet.link.status, 'ok');
  assert.match(await master.command('GET', 'sluice:gw:gw-a'), /"name":"gw-a"/);
  assert.deepEqual(await fleet.membership.gatewaysOf('home'), ['gw-a']);
});

test('fleet over TLS with a password: rediss:// with tls.ca; a wrong password leaves the link degraded with the reason', async (t) => {
  if (!havePeer(t, 'openssl', 'openssl')) return;
  const dir = await tempDir(t, 'sluice-redis-tls-');
  const ca = join(dir, 'ca.pem');
  const key = join(dir, 'key.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', ca, '-days', '1', '-subj', '/CN=redis-test', '-addext', 'subjectAltName=IP:127.0.0.1']);
  assert.equal(made.status, 0, String(made.stderr));
  const redis = await startRedis(t, {
    args: (port) => ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', ca, '--tls-key-file', key, '--tls-ca-cert-file', ca, '--tls-auth-clients', 'no', '--requirepass', 'fleet-secret', '--save', '', '--appendonly', 'no'],
  });
  if (!redis) return;
  const fleet = await member(t, `rediss://:fleet-secret@127.0.0.1:${redis.port}/0`, { ca });
  assert.equal(fleet.link.status, 'ok');
  assert.deepEqual(fleet.membership.view.map((g) => g.name), ['gw-a']);
  assert.equal(fleet.health().redis, `rediss://:***@127.0.0.1:${redis.port}/0`);

  const wrong = await member(t, `rediss://:not-it@127.0.0.1:${redis.port}/0`, { ca });
  assert.equal(wrong.link.status, 'degraded');
  assert.match(wrong.health().error ?? '', /WRONGPASS|invalid password|NOAUTH/i);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';

// Pool keys (docs/pools.md): the forms that compile, their defaults, and every refused
// combination named by path and line.
const problems = (yaml: string) => {
  const r = parseConfig(yaml);
  assert.equal(r.ok, false, 'expected problems');
  return r.ok ? [] : r.issues.map(formatIssue);
};

test('pool config: a list is a pool; the first member stays `upstream`; defaults per transport', () => {
  const r = parseConfig(`
routes:
  game:
    listen: udp://0.0.0.0:27015
    upstream: [10.0.0.1:27015, 10.0.0.2:27015]
    health:
      udp: { send: "hex:ffffffff54", expect: "hex:ffffffff49", interval: 2s, timeout: 1s, rise: 2, fall: 3 }
  web:
    listen: tcp://0.0.0.0:8080
    upstream:
      - 10.0.0.1:80
      - { address: "[2001:db8::2]:80", weight: 3 }
      - { address: backup.example.net:80, backup: true }
    health:
      tcp: { interval: 5s, timeout: 2s, send: "text:HEAD / HTTP/1.0\\r\\n\\r\\n", expect: "text:HTTP/1." }
  one:
    listen: udp://0.0.0.0:53
    upstream: 10.0.0.9:53
`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const [game, web, one] = r.config.routes;
  assert.deepEqual(game!.upstream, { host: '10.0.0.1', port: 27015 });
  assert.equal(game!.pool!.balance, 'source-hash');
  assert.equal(game!.pool!.failover, 'move');
  assert.deepEqual(game!.pool!.check, { transport: 'udp', intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3, jitter: 0.1, send: 'ffffffff54', expect: { hex: 'ffffffff49', match: 'prefix' } });
  assert.deepEqual(game!.pool!.passive, { ejectMs: 10_000, maxEjectMs: 300_000, silentDatagrams: 0, silentMs: 10_000 });
  assert.equal(web!.pool!.balance, 'least-conn');
  assert.deepEqual(web!.pool!.members, [
    { host: '10.0.0.1', port: 80, weight: 1, backup: false },
    { host: '2001:db8::2', port: 80, weight: 3, backup: false },
    { host: 'backup.example.net', port: 80, weight: 1, backup: true },
  ]);
  assert.deepEqual(web!.pool!.check!.expect, { hex: Buffer.from('HTTP/1.').toString('hex'), match: 'contains' });
  assert.equal(one!.pool, undefined, 'one upstream without balance/health is not a pool');
});

test('pool config: balance or health on one upstream makes a pool of one; failover keep and passive settings compile', () => {
  const r = parseConfig(`
routes:
  dns:
    listen: udp://0.0.0.0:53
    upstream: 10.0.0.9:53
    balance: round-robin
    udp: { failover: keep }
    health:
      passive: { ejectTime: 5s, maxEjectTime: 1m, silentDatagrams: 4, silentTime: 3s }
`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const p = r.config.routes[0]!.pool!;
  assert.deepEqual(p.members, [{ host: '10.0.0.9', port: 53, weight: 1, backup: false }]);
  assert.equal(p.failover, 'keep');
  assert.equal(p.check, undefined);
  assert.deepEqual(p.passive, { ejectMs: 5000, maxEjectMs: 60_000, silentDatagrams: 4, silentMs: 3000 });
});

test('pool config: bad members and check bytes are named by path and line', () => {
  assert.deepEqual(
    problems(`routes:
  mixed:
    listen: tcp://0.0.0.0:80
    upstream: [10.0.0.1:80, "10.0.0.3:80-90", { address: 10.0.0.4:80, weight: 0 }, { address: 10.0.0.5:80, wieght: 2 }]
  slow:
    listen: udp://0.0.0.0:5000
    upstream: [10.0.0.1:5000]
    health:
      udp: { send: "hex:abc", interval: 1s, timeout: 2s }
    balance: fastest
  nosend:
    listen: udp://0.0.0.0:5003
    upstream: [10.0.0.1:5003]
    health:
      udp: { interval: 1s }
`),
    [
      'routes.mixed.upstream.1.address (line 4): a pool member is one port, not a range ("10.0.0.3:80-90")',
      'routes.mixed.upstream.2.weight (line 4): must be at least 1; got the number 0',
      'routes.mixed.upstream.3.wieght (line 4): unknown key "wieght"',
      'routes.slow.health.udp.send (line 9): "hex:abc" is not hex bytes (hex: then pairs of 0-9a-f)',
      'routes.slow.balance (line 10): expected one of round-robin, least-conn, p2c, source-hash; got "fastest"',
      'routes.nosend.health.udp.send (line 15): is required',
    ],
  );
});

test('pool config: combinations a pool does not support are named by path and line', () => {
  assert.deepEqual(
    problems(`routes:
  range:
    listen: udp://0.0.0.0:27000-27010
    upstream: [10.0.0.1:27000, 10.0.0.2:27000]
  mixed:
    listen: tcp://0.0.0.0:80
    upstream: [10.0.0.1:80, 10.0.0.1:80]
    health:
      udp: { send: "text:x" }
  slow:
    listen: udp://0.0.0.0:5000
    upstream: [10.0.0.1:5000]
    health:
      udp: { send: "text:x", interval: 50ms, timeout: 2s }
  backups:
    listen: udp://0.0.0.0:5001
    upstream: [{ address: 10.0.0.1:5001, backup: true }]
  single:
    listen: udp://0.0.0.0:5002
    upstream: 10.0.0.1:5002
    udp: { failover: move }
`),
    [
      'routes.range.upstream (line 4): a pool cannot serve a port range (each listen port maps to its own upstream port); use a single-port listen',
      'routes.mixed.upstream.1 (line 7): 10.0.0.1:80 is listed twice',
      'routes.mixed.health.udp (line 9): a UDP check on a tcp:// route; use health.tcp',
      'routes.slow.health.udp.timeout (line 14): must not be longer than interval (50ms): one check per member at a time',
      'routes.slow.health.udp.interval (line 14): must be at least 100ms (checks are bounded in rate)',
      'routes.backups.upstream (line 17): every member is a backup; at least one must be a primary',
      'routes.single.udp.failover (line 21): failover applies to a pool; give upstream a list of members',
    ],
  );
});

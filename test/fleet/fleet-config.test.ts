import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { parseRedisUrl } from '../../src/config/redis-url.js';

const yaml = (fleet: string) => `gateway:
  listen: 127.0.0.1:7000
  agents:
    home: { token: "home-token-0123456789abcdef" }
  ports: 20000-20100
  fleet:
${fleet}
`;

test('config: no gateway.fleet means no fleet', () => {
  const r = parseConfig(`gateway:\n  listen: 127.0.0.1:7000\n  agents:\n    home: { token: "home-token-0123456789abcdef" }\n  ports: 20000-20100\n`);
  assert.ok(r.ok);
  assert.equal(r.config.gateway!.fleet, undefined);
});

test('config: gateway.fleet with the two fixed keys gets documented defaults', () => {
  const r = parseConfig(yaml('    redis: redis://127.0.0.1:6379/0\n    name: gw-a'));
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const f = r.config.gateway!.fleet!;
  assert.deepEqual(
    { name: f.name, hosts: f.redis.hosts, db: f.redis.db, prefix: f.keyPrefix, hb: f.heartbeatMs, ttl: f.ttlMs, down: f.onRedisDown, addr: f.publicAddresses, limits: f.limits },
    { name: 'gw-a', hosts: [{ host: '127.0.0.1', port: 6379 }], db: 0, prefix: 'sluice:', hb: 2000, ttl: 10_000, down: 'local', addr: ['127.0.0.1:7000'], limits: { maxPerSource: 0, ratePerSource: 0, rateWindowMs: 1000 } },
  );
});

test('config: every fleet key, TLS and a Sentinel URL with credentials (the password is never shown)', () => {
  const r = parseConfig(
    yaml(`    redis: rediss+sentinel://sluice:s%40cret@10.0.0.1:26379,10.0.0.2/mymaster/2
    name: gw-b
    keyPrefix: "prod:"
    heartbeat: 1s
    ttl: 5s
    onRedisDown: deny
    publicAddresses: ["203.0.113.5:7000"]
    tls: { ca: /etc/sluice/redis-ca.pem, serverName: redis.internal }
    limits: { maxPerSource: 50, ratePerSource: { sessions: 100, per: 10s } }`),
  );
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const f = r.config.gateway!.fleet!;
  assert.deepEqual(f.redis, {
    shown: 'rediss+sentinel://sluice:***@10.0.0.1:26379,10.0.0.2/mymaster/2',
    hosts: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26379 }],
    sentinelMaster: 'mymaster',
    db: 2,
    username: 'sluice',
    password: 's@cret',
    tls: { ca: '/etc/sluice/redis-ca.pem', serverName: 'redis.internal' },
  });
  assert.deepEqual(f.limits, { maxPerSource: 50, ratePerSource: 100, rateWindowMs: 10_000 });
  assert.equal(f.onRedisDown, 'deny');
});

test('config: fleet errors name the key and its line', () => {
  const cases: [string, string, number, RegExp][] = [
    ['    redis: http://127.0.0.1:6379\n    name: gw-a', 'gateway.fleet.redis', 7, /unknown scheme http:/],
    ['    redis: redis://127.0.0.1:99999\n    name: gw-a', 'gateway.fleet.redis', 7, /port 99999/],
    ['    redis: redis://a:1,b:2\n    name: gw-a', 'gateway.fleet.redis', 7, /redis\+sentinel/],
    ['    redis: redis+sentinel://a:26379\n    name: gw-a', 'gateway.fleet.redis', 7, /master name/],
    ['    redis: redis://127.0.0.1/x\n    name: gw-a', 'gateway.fleet.redis', 7, /database "x"/],
    ['    redis: redis://127.0.0.1\n    name: -bad', 'gateway.fleet.name', 8, /gateway names/],
    ['    redis: redis://127.0.0.1\n    name: gw-a\n    heartbeat: 5s\n    ttl: 6s', 'gateway.fleet.ttl', 10, /at least twice heartbeat/],
    ['    redis: redis://127.0.0.1\n    name: gw-a\n    onRedisDown: allow', 'gateway.fleet.onRedisDown', 9, /local|deny/],
    ['    redis: redis://127.0.0.1\n    name: gw-a\n    tls: { ca: x.pem }', 'gateway.fleet.tls', 9, /rediss:\/\//],
    ['    redis: redis://127.0.0.1\n    name: gw-a\n    peers: 3', 'gateway.fleet.peers', 9, /unknown key/],
  ];
  for (const [body, path, line, message] of cases) {
    const r = parseConfig(yaml(body));
    assert.ok(!r.ok, body);
    const issue = r.issues.find((i) => i.path === path);
    assert.ok(issue, `${body}: expected an issue at ${path}, got ${JSON.stringify(r.issues)}`);
    assert.equal(issue.line, line, `${body}: line`);
    assert.match(issue.message, message);
  }
  const missing = parseConfig(yaml('    name: gw-a'));
  assert.ok(!missing.ok && missing.issues.some((i) => i.path === 'gateway.fleet.redis'));
});

test('redis URL forms', () => {
  assert.deepEqual(parseRedisUrl('redis://[::1]:6380/3'), { shown: 'redis://[::1]:6380/3', hosts: [{ host: '::1', port: 6380 }], db: 3 });
  assert.deepEqual(parseRedisUrl('rediss://:pw@redis.example.org'), { shown: 'rediss://:***@redis.example.org', hosts: [{ host: 'redis.example.org', port: 6379 }], db: 0, password: 'pw', tls: {} });
  assert.match(String(parseRedisUrl('127.0.0.1:6379')), /expected redis:\/\//);
});

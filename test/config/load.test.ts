import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';

const issuesOf = (text: string) => {
  const r = parseConfig(text);
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return (r as { issues: { path: string; line?: number; message: string }[] }).issues;
};

test('config: the issue example parses, with documented defaults filled in', () => {
  const r = parseConfig(`
routes:
  dns:
    listen: udp://0.0.0.0:5353      # tcp://... or udp://..., IPv6 as udp://[::]:5353
    upstream: 127.0.0.1:53          # host:port; hostnames resolved
  ssh:
    listen: tcp://0.0.0.0:2222
    upstream: 127.0.0.1:22
  v6:
    listen: udp://[::]:5354
    upstream: resolver.example.net:53
`);
  assert.ok(r.ok);
  const [dns, ssh, v6] = r.config.routes;
  assert.deepEqual(dns!.listen, { transport: 'udp', host: '0.0.0.0', port: 5353 });
  assert.deepEqual(dns!.upstream, { host: '127.0.0.1', port: 53 });
  assert.deepEqual(dns!.udp, {
    idleTimeoutMs: 30_000,
    maxSessions: 1024,
    maxSessionsPerSource: 256,
    rate: { perSecond: 50, burst: 100 },
    ratePerSource: { perSecond: 20, burst: 40 },
    onLimit: 'reject',
    setupQueue: 128,
    maxDatagramBytes: 65507,
    replyBudget: { ratio: 64, windowMs: 10_000 },
  });
  assert.equal(ssh!.tcp.connectTimeoutMs, 10_000);
  assert.equal(ssh!.tcp.idleTimeoutMs, 600_000);
  assert.deepEqual(v6!.listen, { transport: 'udp', host: '::', port: 5354 });
  assert.deepEqual(v6!.upstream, { host: 'resolver.example.net', port: 53 });
  assert.equal(r.config.lifecycle.drainTimeoutMs, 30_000);
  assert.ok(Object.isFrozen(r.config.routes[0]!.udp), 'the config is frozen');
});

test('config: durations and per-route session blocks', () => {
  const r = parseConfig(`
routes:
  game:
    listen: udp://127.0.0.1:27015
    upstream: "[::1]:27015"
    udp: { idleTimeout: 2m, maxSessions: 10, onLimit: evict-lru, rate: { perSecond: 5, burst: 7 } }
`);
  assert.ok(r.ok);
  const g = r.config.routes[0]!;
  assert.equal(g.udp.idleTimeoutMs, 120_000);
  assert.equal(g.udp.onLimit, 'evict-lru');
  assert.deepEqual(g.udp.rate, { perSecond: 5, burst: 7 });
  assert.deepEqual(g.upstream, { host: '::1', port: 27015 });
});

test('config: udp.replyBudget: default per place, off, custom, and refused where it does not apply', () => {
  const r = parseConfig(`
routes:
  a: { listen: udp://127.0.0.1:1, upstream: 127.0.0.1:2 }
  b: { listen: udp://127.0.0.1:3, upstream: 127.0.0.1:2, udp: { replyBudget: off } }
  c: { listen: udp://127.0.0.1:4, upstream: 127.0.0.1:2, udp: { replyBudget: { ratio: 200, window: 30s } } }
  d: { listen: udp://127.0.0.1:5, upstream: 127.0.0.1:2, udp: { replyBudget: { ratio: 8 } } }
gateway:
  listen: 127.0.0.1:7000
  agents: { home: { token: "0123456789abcdef0123" }, lab: { token: "0123456789abcdef0123", replyBudget: off } }
  ports: 1024-65535
  services: { udp: { replyBudget: { ratio: 100 } } }
`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const [a, b, c, d] = r.config.routes;
  assert.deepEqual(a!.udp.replyBudget, { ratio: 64, windowMs: 10_000 });
  assert.equal(b!.udp.replyBudget, undefined);
  assert.deepEqual(c!.udp.replyBudget, { ratio: 200, windowMs: 30_000 });
  assert.deepEqual(d!.udp.replyBudget, { ratio: 8, windowMs: 10_000 });
  assert.deepEqual(r.config.gateway!.services.udp.replyBudget, { ratio: 100, windowMs: 10_000 });
  assert.deepEqual(r.config.gateway!.agents.get('home')!.udp!.replyBudget, { ratio: 100, windowMs: 10_000 }, 'an agent without its own takes services.udp');
  assert.equal(r.config.gateway!.agents.get('lab')!.udp!.replyBudget, undefined, 'gateway.agents.lab.replyBudget: off');
  assert.equal(r.config.gateway!.agents.get('lab')!.udp!.idleTimeoutMs, 30_000, 'the rest of services.udp is kept');

  const bad = parseConfig(`
routes:
  a: { listen: udp://127.0.0.1:1, upstream: 127.0.0.1:2, udp: { replyBudget: { ratio: 0.5 } } }
  b: { listen: udp://127.0.0.1:3, upstream: 127.0.0.1:2, udp: { replyBudget: lots } }
`);
  assert.ok(!bad.ok);
  const paths = bad.issues.map((i) => i.path);
  assert.ok(paths.includes('routes.a.udp.replyBudget.ratio'), paths.join(' '));
  assert.ok(paths.some((p) => p.startsWith('routes.b.udp.replyBudget')), paths.join(' '));
  const agent = parseConfig(`
agent:
  name: home
  gateway: 127.0.0.1:7000
  token: "0123456789abcdef0123"
  fingerprint: sha256:${'ab'.repeat(32)}
  expose:
    wg: { local: 127.0.0.1:51820, remote: udp://0.0.0.0:51820, udp: { replyBudget: off } }
`);
  assert.ok(!agent.ok);
  const onAgent = agent.issues.find((i) => i.path === 'agent.expose.wg.udp.replyBudget');
  assert.match(onAgent?.message ?? '', /gateway\.services\.udp\.replyBudget/);
});

test('config: every problem is listed with its path and line, not just the first', () => {
  const issues = issuesOf(`routes:
  dns:
    listen: udp://0.0.0.0:99999
    upstream: 127.0.0.1
    colour: blue
    udp:
      idleTimeout: 30 seconds
      maxSessions: -1
  ssh:
    listen: http://0.0.0.0:2222
    upstream: 127.0.0.1:22
    udp: {}
lifecycle: { drainTimeout: soon }
`);
  const text = issues.map(formatIssue);
  assert.deepEqual(text, [
    'routes.dns.listen (line 3): expected tcp://host:port or udp://host:port: port 99999 is out of range (1-65535)',
    'routes.dns.upstream (line 4): expected host:port (IPv6 as [addr]:port)',
    'routes.dns.colour (line 5): unknown key "colour"',
    'routes.dns.udp.idleTimeout (line 7): expected a duration such as 30s, 10m, 250ms; got "30 seconds"',
    'routes.dns.udp.maxSessions (line 8): must be at least 0; got the number -1',
    'routes.ssh.listen (line 10): expected tcp://host:port or udp://host:port',
    'lifecycle.drainTimeout (line 13): expected a duration such as 30s, 10m, 250ms; got "soon"',
  ]);
});

test('config: transport mismatches, duplicate listeners, bad names and YAML errors', () => {
  const a = issuesOf(`
routes:
  a:
    listen: tcp://0.0.0.0:2222
    upstream: 127.0.0.1:22
    udp: { maxSessions: 1 }
  b:
    listen: tcp://0.0.0.0:2222
    upstream: 127.0.0.1:23
  "bad name!":
    listen: udp://0.0.0.0:1
    upstream: 127.0.0.1:1
`).map(formatIssue);
  assert.ok(a.includes('routes.a.udp (line 6): udp settings on a tcp:// route'), a.join('\n'));
  assert.ok(a.includes('routes.b.listen (line 8): tcp://0.0.0.0:2222 is already the listen address of route "a" (routes.a.listen, line 4); both cannot be bound'), a.join('\n'));
  assert.ok(a.some((m) => m.startsWith('routes.bad name!') && m.includes('route names use letters')), a.join('\n'));

  const y = issuesOf('routes:\n  a:\n    listen: tcp://0.0.0.0:1\n    listen: tcp://0.0.0.0:2\n');
  assert.equal(y.length, 1);
  assert.equal(y[0]!.line, 4);
  assert.match(y[0]!.message, /^YAML: /);

  const host = issuesOf('routes:\n  a:\n    listen: tcp://example.com:1\n    upstream: 127.0.0.1:1\n').map(formatIssue);
  assert.deepEqual(host, ['routes.a.listen (line 3): listen host must be an IP address, got "example.com"']);
  const missing = issuesOf('routes:\n  a:\n    listen: tcp://127.0.0.1:1\n').map(formatIssue);
  assert.deepEqual(missing, ['routes.a.upstream (line 2): is required']);
  const v4 = issuesOf('routes:\n  a:\n    listen: tcp://127.0.0.1:1\n    upstream: 127.0.0.256:1\n').map(formatIssue);
  assert.deepEqual(v4, ['routes.a.upstream (line 4): "127.0.0.256" is not a valid IPv4 address']);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';

const issuesOf = (text: string) => {
  const r = parseConfig(text);
  return r.ok ? [] : r.issues.map(formatIssue);
};
const route = (listen: string, upstream: string, extra = '') => `routes:\n  rtp:\n    listen: "${listen}"\n    upstream: "${upstream}"\n${extra}`;

test('port range config: a listen range and a same-sized upstream range compile to one route', () => {
  const r = parseConfig(route('udp://0.0.0.0:27000-27100', '10.0.0.5:40000-40100'));
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const [rtp] = r.config.routes;
  assert.deepEqual([rtp!.listen.port, rtp!.ports, rtp!.upstream.port, rtp!.upstreamRange], [27000, 101, 40000, true]);
  const one = parseConfig(route('tcp://[::]:5000-5009', 'backend.internal:8080'));
  assert.ok(one.ok);
  assert.deepEqual([one.config.routes[0]!.ports, one.config.routes[0]!.upstreamRange], [10, undefined]);
});

test('port range config: reversed, zero, one-port, out-of-range and too large ranges name the key and line', () => {
  assert.deepEqual(issuesOf(route('udp://0.0.0.0:27100-27000', '10.0.0.5:1')), ['routes.rtp.listen (line 3): port range 27100-27000 is reversed; write 27000-27100']);
  assert.deepEqual(issuesOf(route('udp://0.0.0.0:0-10', '10.0.0.5:1')), ['routes.rtp.listen (line 3): port range 0-10 includes port 0; ranges are fixed ports (1-65535)']);
  assert.deepEqual(issuesOf(route('udp://0.0.0.0:5000-5000', '10.0.0.5:1')), ['routes.rtp.listen (line 3): port range 5000-5000 holds one port; write :5000']);
  assert.deepEqual(issuesOf(route('udp://0.0.0.0:65000-70000', '10.0.0.5:1')), ['routes.rtp.listen (line 3): port range 65000-70000 is out of range (1-65535)']);
  assert.deepEqual(issuesOf(route('udp://0.0.0.0:20000-30000', '10.0.0.5:1')), [
    'routes.rtp.listen (line 3): port range 20000-30000 holds 10001 ports; at most 10000 per route (split it into several routes)',
  ]);
  assert.deepEqual(issuesOf(route('udp://0.0.0.0:20000-20009', '10.0.0.5:9-0')), ['routes.rtp.upstream (line 4): port range 9-0 includes port 0; ranges are fixed ports (1-65535)']);
});

test('port range config: an upstream range of another size, or with a single listen port, is refused', () => {
  assert.deepEqual(issuesOf(route('udp://0.0.0.0:27000-27099', '10.0.0.5:40000-40009')), [
    'routes.rtp.upstream (line 4): the upstream range holds 10 ports but listen holds 100; give one port (every listen port goes to it) or a range of 100',
  ]);
  assert.deepEqual(issuesOf(route('udp://0.0.0.0:27000', '10.0.0.5:40000-40009')), [
    'routes.rtp.upstream (line 4): an upstream range (10 ports) needs a listen range of the same size; listen has one port',
  ]);
});

test('port range config: a range overlapping another route, either way round, names both routes and lines', () => {
  const yaml = `routes:
  game:
    listen: "udp://0.0.0.0:27000-27100"
    upstream: 10.0.0.5:27000
  voice:
    listen: udp://127.0.0.1:27050
    upstream: 10.0.0.6:9987
  media:
    listen: "udp://0.0.0.0:27100-27200"
    upstream: 10.0.0.7:5000
  other:
    listen: "tcp://0.0.0.0:27000-27100"
    upstream: 10.0.0.8:80
`;
  assert.deepEqual(issuesOf(yaml), [
    'routes.voice.listen (line 6): udp://127.0.0.1:27050 overlaps the listen address of route "game" (routes.game.listen, line 3: udp://0.0.0.0:27000-27100); both cannot be bound',
    'routes.media.listen (line 9): udp://0.0.0.0:27100-27200 overlaps the listen address of route "game" (routes.game.listen, line 3: udp://0.0.0.0:27000-27100); both cannot be bound',
  ]);
  assert.deepEqual(issuesOf(`routes:
  a: { listen: "udp://0.0.0.0:27101-27200", upstream: 10.0.0.5:1 }
  b: { listen: "udp://0.0.0.0:27000-27100", upstream: 10.0.0.5:1 }
`), [], 'adjacent ranges do not overlap');
});

test('port range config: match (routing by name) with a range is refused', () => {
  assert.deepEqual(issuesOf(route('tcp://0.0.0.0:8443-8450', '127.0.0.1:9443', '    match: { sni: [a.example.org] }\n')), [
    'routes.rtp.match (line 5): match (routing by server name) needs a single-port listen; this listen is a range of 8 ports',
  ]);
});

test('port range config: onLimit evict-lru with a range is refused (a port could only evict its own sessions)', () => {
  assert.deepEqual(issuesOf(route('udp://0.0.0.0:27000-27009', '10.0.0.5:1', '    udp: { onLimit: evict-lru }\n')), [
    'routes.rtp.udp.onLimit (line 5): evict-lru is not available on a port range yet (each port could only evict its own sessions); use reject',
  ]);
});

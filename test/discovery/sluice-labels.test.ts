import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerCandidates, formatProblem } from '../../src/discovery/problems.js';
import { parseSluiceLabels } from '../../src/discovery/sluice-labels.js';
import { config } from '../helpers/node.js';
import { container } from './support/fixtures.js';

const docker = { sluiceLabels: true, godoxy: { enabled: true, bind: '0.0.0.0' } };
const noFile = { acl: undefined, geoip: undefined };

test('dotted labels become a route with the config file defaults and the container as origin', () => {
  const c = container({
    name: 'dns',
    labels: {
      'sluice.routes.dns.listen': 'udp://0.0.0.0:5353',
      'sluice.routes.dns.upstream': '127.0.0.1:53',
      'sluice.routes.dns.udp.idleTimeout': '45s',
      'sluice.routes.dns.udp.maxSessions': '10',
      'sluice.routes.dns.udp.rate.perSecond': '5',
      'sluice.routes.dns.acl.allow': '10.0.0.0/8, 192.168.0.0/16',
      'sluice.routes.dns.proxyProtocol.send': 'v2',
      'com.example.other': 'ignored',
    },
  });
  const { routes, problems } = containerCandidates(c, docker, noFile);
  assert.deepEqual(problems, []);
  assert.equal(routes.length, 1);
  const r = routes[0]!;
  assert.equal(r.name, 'dns');
  assert.deepEqual(r.listen, { transport: 'udp', host: '0.0.0.0', port: 5353 });
  assert.deepEqual(r.upstream, { host: '127.0.0.1', port: 53 });
  assert.equal(r.udp.idleTimeoutMs, 45_000);
  assert.equal(r.udp.maxSessions, 10);
  assert.deepEqual(r.udp.rate, { perSecond: 5, burst: 100 });
  assert.equal(r.udp.maxSessionsPerSource, 256, 'file defaults apply');
  assert.deepEqual(r.acl?.allow, ['10.0.0.0/8', '192.168.0.0/16']);
  assert.equal(r.proxyProtocol?.send, 'v2');
  assert.deepEqual(r.origin, { kind: 'container', container: 'dns', containerId: c.id, labels: 'sluice' });
  assert.ok(Object.isFrozen(r));
});

test('a whole route as a YAML flow mapping, mixed with dotted keys', () => {
  const c = container({
    labels: {
      'sluice.routes.ssh': '{listen: "tcp://127.0.0.1:2222", upstream: "127.0.0.1:22", tcp: {idleTimeout: 1h}}',
      'sluice.routes.ssh.tcp.maxConnections': '7',
      'sluice.routes.ssh.acl': '{deny: [203.0.113.0/24]}',
    },
  });
  const { routes, problems } = containerCandidates(c, docker, noFile);
  assert.deepEqual(problems, []);
  assert.equal(routes[0]!.tcp.idleTimeoutMs, 3_600_000);
  assert.equal(routes[0]!.tcp.maxConnections, 7);
  assert.deepEqual(routes[0]!.acl?.deny, ['203.0.113.0/24']);
});

test('upstream written as a port means the container: 127.0.0.1 on host networking, else its own address', () => {
  const host = container({ labels: { 'sluice.routes.a.listen': 'udp://0.0.0.0:53', 'sluice.routes.a.upstream': ':5353' } });
  assert.deepEqual(containerCandidates(host, docker, noFile).routes[0]!.upstream, { host: '127.0.0.1', port: 5353 });
  const bridged = container({ networks: { zeta: '172.18.0.9', app: '172.20.0.5' }, labels: { 'sluice.routes.b.listen': 'tcp://0.0.0.0:80', 'sluice.routes.b.upstream': '8080' } });
  assert.deepEqual(containerCandidates(bridged, docker, noFile).routes[0]!.upstream, { host: '172.20.0.5', port: 8080 }, 'first network by name');
  const published = container({
    networks: {},
    hostNetwork: false,
    ports: [{ privatePort: 53, publicPort: 10053, type: 'udp', ip: '0.0.0.0' }],
    labels: { 'sluice.routes.c.listen': 'udp://0.0.0.0:53', 'sluice.routes.c.upstream': ':53' },
  });
  assert.deepEqual(containerCandidates(published, docker, noFile).routes[0]!.upstream, { host: '127.0.0.1', port: 10053 });
  const none = container({ name: 'isolated', networks: {}, hostNetwork: false, labels: { 'sluice.routes.d.listen': 'udp://0.0.0.0:53', 'sluice.routes.d.upstream': ':53' } });
  const r = containerCandidates(none, docker, noFile);
  assert.equal(r.routes.length, 0);
  assert.equal(r.problems[0]!.label, 'sluice.routes.d.upstream');
  assert.match(r.problems[0]!.message, /no address Sluice can reach/);
});

test('problems name the container, the label and what is wrong; only the bad route is skipped', () => {
  const c = container({
    name: 'web',
    labels: {
      'sluice.routes.good.listen': 'tcp://0.0.0.0:8443',
      'sluice.routes.good.upstream': '127.0.0.1:443',
      'sluice.routes.typo.lisen': 'tcp://0.0.0.0:1',
      'sluice.routes.typo.upstream': '127.0.0.1:1',
      'sluice.routes.addr.listen': 'udp://example.com:53',
      'sluice.routes.addr.upstream': '127.0.0.1:53',
      'sluice.routes.dur.listen': 'udp://0.0.0.0:54',
      'sluice.routes.dur.upstream': '127.0.0.1:53',
      'sluice.routes.dur.udp.idleTimeout': '30',
      'sluice.routes.pp.listen': 'udp://0.0.0.0:55',
      'sluice.routes.pp.upstream': '127.0.0.1:53',
      'sluice.routes.pp.proxyProtocol.send': 'v1',
      'sluice.enable': 'true',
    },
  });
  const { routes, problems } = containerCandidates(c, docker, noFile);
  assert.deepEqual(routes.map((r) => r.name), ['good']);
  const lines = problems.map(formatProblem).sort();
  const id = c.id.slice(0, 12);
  assert.deepEqual(lines, [
    `container web (${id}) label sluice.enable: unknown Sluice label; routes are declared as sluice.routes.<name>.<key>`,
    `container web (${id}) label sluice.routes.addr.listen: listen host must be an IP address, got "example.com"`,
    `container web (${id}) label sluice.routes.dur.udp.idleTimeout: expected a duration such as 30s, 10m, 250ms; got "30"`,
    `container web (${id}) label sluice.routes.pp.proxyProtocol.send: v1 is TCP only; use v2 on a udp:// route`,
    `container web (${id}) label sluice.routes.typo.lisen: unknown key "lisen" (did you mean "listen"?)`,
  ]);
  assert.ok(problems.every((p) => p.kind === 'label' && p.containerId === c.id));
});

test('a key set twice, a malformed label and bad YAML skip that route', () => {
  const c = container({
    labels: {
      'sluice.routes.a': '{listen: "udp://0.0.0.0:1", upstream: "127.0.0.1:1"}',
      'sluice.routes.a.listen': 'udp://0.0.0.0:2',
      'sluice.routes.b..listen': 'udp://0.0.0.0:3',
      'sluice.routes.c': '{listen: [',
      'sluice.routes.d.udp.maxSessions': 'many',
      'sluice.routes.d.listen': 'udp://0.0.0.0:4',
      'sluice.routes.d.upstream': '127.0.0.1:4',
    },
  });
  const { routes, problems } = containerCandidates(c, docker, noFile);
  assert.deepEqual(routes, []);
  const byRoute = new Map(problems.map((p) => [p.route, p]));
  assert.match(byRoute.get('a')!.message, /already sets/);
  assert.equal(byRoute.get('b')!.label, 'sluice.routes.b..listen');
  assert.match(byRoute.get('c')!.message, /YAML/);
  assert.equal(byRoute.get('d')!.label, 'sluice.routes.d.udp.maxSessions');
});

test('label routes inherit the file top-level acl and obey its geoip rule', () => {
  const file = config('acl: { deny: [198.51.100.0/24] }\nroutes: {}\n');
  const c = container({ labels: { 'sluice.routes.a.listen': 'tcp://0.0.0.0:1', 'sluice.routes.a.upstream': '127.0.0.1:1' } });
  assert.deepEqual(containerCandidates(c, docker, file).routes[0]!.acl?.deny, ['198.51.100.0/24']);
  const geo = container({
    labels: { 'sluice.routes.g.listen': 'tcp://0.0.0.0:1', 'sluice.routes.g.upstream': '127.0.0.1:1', 'sluice.routes.g.acl.countries.deny': 'RU' },
  });
  const r = containerCandidates(geo, docker, noFile);
  assert.equal(r.routes.length, 0);
  assert.match(r.problems[0]!.label!, /^sluice\.routes\.g\.acl/);
});

test('label values: numbers and booleans typed, text keys kept as text, lists split', () => {
  const c = container({
    labels: {
      'sluice.routes.x.listen': 'udp://[::]:5353',
      'sluice.routes.x.upstream': '[::1]:53',
      'sluice.routes.x.acl.observeOnly': 'true',
      'sluice.routes.x.acl.allow': '[10.0.0.0/8, "::1/128"]',
      'sluice.routes.x.proxyProtocol.accept': '127.0.0.1/32',
      'sluice.routes.x.proxyProtocol.udp': 'first',
    },
  });
  const parsed = parseSluiceLabels(c);
  assert.deepEqual(parsed.problems, []);
  assert.deepEqual(parsed.routes[0]!.raw, {
    listen: 'udp://[::]:5353',
    upstream: '[::1]:53',
    acl: { observeOnly: true, allow: ['10.0.0.0/8', '::1/128'] },
    proxyProtocol: { accept: ['127.0.0.1/32'], udp: 'first' },
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGodoxyLabels } from '../../src/discovery/godoxy-labels.js';
import { containerCandidates } from '../../src/discovery/problems.js';
import { container } from './support/fixtures.js';

const opts = { bind: '0.0.0.0' };
const docker = { sluiceLabels: true, godoxy: { enabled: true, bind: '0.0.0.0' } };
const noFile = { acl: undefined, geoip: undefined };
const raws = (labels: Record<string, string>, over: Parameters<typeof container>[0] = {}) =>
  parseGodoxyLabels(container({ name: 'app', ...over, labels }), opts);

test('proxy.<alias>.port LISTEN:TARGET without a scheme is a TCP route to the container', () => {
  const r = raws({ 'proxy.ssh.port': '2222:22' });
  assert.deepEqual(r.problems, []);
  assert.equal(r.routes.length, 1);
  assert.equal(r.routes[0]!.name, 'ssh');
  assert.equal(r.routes[0]!.family, 'godoxy');
  assert.deepEqual(r.routes[0]!.raw, { listen: 'tcp://0.0.0.0:2222', upstream: '127.0.0.1:22' });
});

test('scheme udp, tcp4/udp6, bind and host', () => {
  assert.deepEqual(raws({ 'proxy.dns.scheme': 'udp', 'proxy.dns.port': '5353:53' }).routes[0]!.raw, { listen: 'udp://0.0.0.0:5353', upstream: '127.0.0.1:53' });
  assert.deepEqual(raws({ 'proxy.dns.scheme': 'UDP6', 'proxy.dns.port': '53:53' }).routes[0]!.raw, { listen: 'udp://[::]:53', upstream: '127.0.0.1:53' });
  assert.deepEqual(
    raws({ 'proxy.db.scheme': 'tcp4', 'proxy.db.port': '15432:5432', 'proxy.db.bind': '127.0.0.1', 'proxy.db.host': 'db.internal' }).routes[0]!.raw,
    { listen: 'tcp://127.0.0.1:15432', upstream: 'db.internal:5432' },
  );
  assert.deepEqual(raws({ 'proxy.game.scheme': 'udp', 'proxy.game.port': '27015' }).routes[0]!.raw.listen, 'udp://0.0.0.0:0', 'no LISTEN: a free port, as GoDoxy');
});

test('HTTP routes and excluded containers are passed over without a problem', () => {
  assert.deepEqual(raws({ 'proxy.web.port': '8080' }), { routes: [], problems: [] });
  assert.deepEqual(raws({ 'proxy.web.scheme': 'https', 'proxy.web.port': '443' }), { routes: [], problems: [] });
  assert.deepEqual(raws({ 'proxy.aliases': 'a,b', 'proxy.#1.homepage.name': 'A', 'proxy.idle_timeout': '1h' }), { routes: [], problems: [] });
  assert.deepEqual(raws({ 'proxy.exclude': 'true', 'proxy.ssh.port': '2222:22' }), { routes: [], problems: [] });
  assert.deepEqual(raws({ 'proxy.ssh.middlewares.x': 'y', 'proxy.ssh.healthcheck.disable': 'true' }), { routes: [], problems: [] });
});

test('aliases, #N references, the * wildcard (which wins, as in GoDoxy) and list shortcuts', () => {
  const refs = raws({ 'proxy.aliases': 'ssh, dns', 'proxy.#1.port': '2222:22', 'proxy.#2.scheme': 'udp', 'proxy.$2.port': '5353:53' });
  assert.deepEqual(
    refs.routes.map((r) => [r.name, r.raw.listen, r.raw.upstream]),
    [['ssh', 'tcp://0.0.0.0:2222', '127.0.0.1:22'], ['dns', 'udp://0.0.0.0:5353', '127.0.0.1:53']],
  );
  const wild = raws({ 'proxy.aliases': 'a,b', 'proxy.*.scheme': 'udp', 'proxy.a.scheme': 'tcp', 'proxy.ports': '1001:1, 1002:2' });
  assert.deepEqual(wild.routes.map((r) => [r.name, r.raw.listen]), [['a', 'udp://0.0.0.0:1001'], ['b', 'udp://0.0.0.0:1002']]);
  const dflt = raws({ 'proxy.#1.port': '2222:22' }, { name: 'gitea' });
  assert.equal(dflt.routes[0]!.name, 'gitea', 'the container name is the default alias');
  const out = raws({ 'proxy.#3.port': '1:1' });
  assert.equal(out.routes.length, 0);
  assert.equal(out.problems[0]!.label, 'proxy.#3.port');
  assert.match(out.problems[0]!.message, /out of range/);
});

test('a whole alias as a YAML block', () => {
  const r = raws({ 'proxy.ssh': 'scheme: tcp\nport: "2222:22"\nhomepage:\n  name: SSH\n' });
  assert.deepEqual(r.routes[0]!.raw, { listen: 'tcp://0.0.0.0:2222', upstream: '127.0.0.1:22' });
});

test('relay_proxy_protocol_header sends PROXY v2 on TCP and is refused on UDP', () => {
  assert.deepEqual(raws({ 'proxy.ssh.port': '2222:22', 'proxy.ssh.relay_proxy_protocol_header': 'true' }).routes[0]!.raw.proxyProtocol, { send: 'v2' });
  const udp = raws({ 'proxy.dns.scheme': 'udp', 'proxy.dns.port': '53:53', 'proxy.dns.relay_proxy_protocol_header': 'true' });
  assert.equal(udp.routes.length, 0);
  assert.deepEqual(udp.problems, [{ route: 'dns', label: 'proxy.dns.relay_proxy_protocol_header', message: 'relay_proxy_protocol_header is only supported for tcp routes' }]);
});

test('the upstream is the container address on its network (proxy.network picks one), a published port maps back', () => {
  const bridged = { networks: { backend: '172.20.0.7', frontend: '172.21.0.7' }, hostNetwork: false };
  assert.equal(raws({ 'proxy.ssh.port': '2222:22' }, bridged).routes[0]!.raw.upstream, '172.20.0.7:22');
  assert.equal(raws({ 'proxy.ssh.port': '2222:22', 'proxy.network': 'frontend' }, bridged).routes[0]!.raw.upstream, '172.21.0.7:22');
  const published = { ...bridged, ports: [{ privatePort: 22, publicPort: 2022, type: 'tcp' as const, ip: '0.0.0.0' }] };
  assert.equal(raws({ 'proxy.ssh.port': '2222:2022' }, published).routes[0]!.raw.upstream, '172.20.0.7:22');
  const wrongNet = raws({ 'proxy.ssh.port': '2222:22', 'proxy.network': 'nope' }, bridged);
  assert.match(wrongNet.problems[0]!.message, /not on network "nope"/);
});

test('bad ports and schemes are problems on the label that holds them', () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ 'proxy.a.scheme': 'tcp', 'proxy.a.port': '22:99999' }, 'proxy.a.port', /target port "99999"/],
    [{ 'proxy.a.scheme': 'tcp', 'proxy.a.port': '1:2:3' }, 'proxy.a.port', /\[LISTEN:\]TARGET/],
    [{ 'proxy.a.scheme': 'udp' }, 'proxy.a.port', /needs proxy\.a\.port/],
    [{ 'proxy.a.scheme': 'sctp', 'proxy.a.port': '1:1' }, 'proxy.a.scheme', /unknown scheme "sctp"/],
  ];
  for (const [labels, label, message] of cases) {
    const r = raws(labels);
    assert.equal(r.routes.length, 0, JSON.stringify(labels));
    assert.equal(r.problems[0]!.label, label);
    assert.match(r.problems[0]!.message, message);
  }
});

test('validation problems of GoDoxy routes point at the GoDoxy label', () => {
  const c = container({ name: 'app', labels: { 'proxy.ssh.port': '2222:22', 'proxy.ssh.bind': 'localhost' } });
  const r = containerCandidates(c, docker, noFile);
  assert.equal(r.routes.length, 0);
  assert.equal(r.problems[0]!.label, 'proxy.ssh.bind');
  assert.match(r.problems[0]!.message, /listen: listen host must be an IP address/);
  const ok = containerCandidates(container({ labels: { 'proxy.ssh.port': '2222:22' } }), docker, noFile);
  assert.equal(ok.routes[0]!.origin?.labels, 'godoxy');
  assert.deepEqual(ok.routes[0]!.listen, { transport: 'tcp', host: '0.0.0.0', port: 2222 });
});

test('docker.godoxy.enabled: false and docker.sluiceLabels: false turn a family off', () => {
  const c = container({ labels: { 'proxy.ssh.port': '2222:22', 'sluice.routes.x.listen': 'tcp://0.0.0.0:1', 'sluice.routes.x.upstream': ':1' } });
  assert.deepEqual(containerCandidates(c, { ...docker, godoxy: { enabled: false, bind: '0.0.0.0' } }, noFile).routes.map((r) => r.name), ['x']);
  assert.deepEqual(containerCandidates(c, { ...docker, sluiceLabels: false }, noFile).routes.map((r) => r.name), ['ssh']);
});

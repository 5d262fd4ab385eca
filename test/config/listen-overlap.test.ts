import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';
import { bindingsOverlap } from '../../src/config/listen-overlap.js';
import { parseListenUrl, type ListenAddress } from '../../src/core/address.js';

const issuesOf = (text: string) => {
  const r = parseConfig(text);
  return r.ok ? [] : r.issues.map(formatIssue);
};
const l = (url: string) => parseListenUrl(url) as ListenAddress;

test('listen overlap: same transport and port on addresses one socket would cover', () => {
  assert.equal(bindingsOverlap(l('udp://127.0.0.1:53'), l('udp://0.0.0.0:53')), true);
  assert.equal(bindingsOverlap(l('udp://0.0.0.0:53'), l('udp://192.0.2.1:53')), true);
  assert.equal(bindingsOverlap(l('tcp://[::]:80'), l('tcp://127.0.0.1:80')), true, ':: is dual-stack');
  assert.equal(bindingsOverlap(l('tcp://[::]:80'), l('tcp://[::1]:80')), true);
  assert.equal(bindingsOverlap(l('udp://127.0.0.1:53'), l('tcp://127.0.0.1:53')), false, 'other transport');
  assert.equal(bindingsOverlap(l('udp://127.0.0.1:53'), l('udp://127.0.0.2:53')), false);
  assert.equal(bindingsOverlap(l('udp://0.0.0.0:53'), l('udp://[::1]:53')), false, '0.0.0.0 covers IPv4 only');
  assert.equal(bindingsOverlap(l('udp://127.0.0.1:53'), l('udp://0.0.0.0:54')), false);
  assert.equal(bindingsOverlap(l('udp://0.0.0.0:0'), l('udp://0.0.0.0:0')), false, 'port 0 picks a free port each');
});

test('listen overlap: config problems name both owners, both keys and both lines', () => {
  const routes = issuesOf(`routes:
  a:
    listen: udp://127.0.0.1:5353
    upstream: 127.0.0.1:53
  b:
    listen: udp://0.0.0.0:5353
    upstream: 127.0.0.1:53
  c:
    listen: tcp://0.0.0.0:5353
    upstream: 127.0.0.1:53
`);
  assert.deepEqual(routes, [
    'routes.b.listen (line 6): udp://0.0.0.0:5353 overlaps the listen address of route "a" (routes.a.listen, line 3: udp://127.0.0.1:5353); both cannot be bound',
  ]);
  const admin = issuesOf(`routes:
  web:
    listen: tcp://0.0.0.0:9090
    upstream: 127.0.0.1:80
admin: { listen: 127.0.0.1:9090 }
`);
  assert.deepEqual(admin, [
    'admin.listen (line 5): tcp://127.0.0.1:9090 overlaps the listen address of route "web" (routes.web.listen, line 3: tcp://0.0.0.0:9090); both cannot be bound',
  ]);
  const gateway = issuesOf(`routes:
  game:
    listen: udp://127.0.0.1:7000
    upstream: 127.0.0.1:7001
gateway:
  listen: 0.0.0.0:7000
  stateDir: /tmp/x
  agents: { home: { token: "0123456789abcdef0123" } }
  ports: 20000-20010
`);
  assert.equal(gateway.length, 1, gateway.join('\n'));
  assert.match(gateway[0]!, /^gateway\.listen \(line 6\): udp:\/\/0\.0\.0\.0:7000 overlaps the listen address of route "game" \(routes\.game\.listen, line 3/);
});

test('listen overlap: the gateway\'s name ports are its own; node routes on them (even with match) are config errors with both keys and lines', () => {
  const issues = issuesOf(`routes:
  web-a: { listen: tcp://0.0.0.0:443, match: { sni: [a.example.org] }, upstream: 127.0.0.1:8443 }
  h3-a: { listen: udp://127.0.0.1:443, match: { sni: [a.example.org] }, upstream: 127.0.0.1:8443 }
  dns: { listen: udp://127.0.0.1:444, upstream: 127.0.0.1:53 }
gateway:
  listen: 0.0.0.0:7000
  ports: 20000-20100
  agents: { home: { token: "0123456789abcdef0123", names: [app.example.org] } }
  names: { tls: "0.0.0.0:443", quic: "0.0.0.0:444" }
`);
  const tail = ": the gateway's name port is its own, and the node's routes cannot share it (even with match); give them another address or port";
  assert.deepEqual(issues, [
    `gateway.names.tls (line 9): tcp://0.0.0.0:443 is already the listen address of route "web-a" (routes.web-a.listen, line 2)${tail}`,
    `gateway.names.quic (line 9): udp://0.0.0.0:444 overlaps the listen address of route "dns" (routes.dns.listen, line 4: udp://127.0.0.1:444)${tail}`,
  ]);
  // Port 0 (tests), another port, or the agent endpoint's port (its own message) are not overlaps here.
  assert.deepEqual(issuesOf(`routes:
  web-a: { listen: tcp://0.0.0.0:443, match: { sni: [a.example.org] }, upstream: 127.0.0.1:8443 }
gateway:
  listen: 0.0.0.0:7000
  ports: 20000-20100
  agents: { home: { token: "0123456789abcdef0123" } }
  names: { tls: "0.0.0.0:0", quic: "0.0.0.0:7000" }
`), ['gateway.names.quic (line 7): port 7000 is the agent endpoint\'s own (gateway.listen); pick another']);
});

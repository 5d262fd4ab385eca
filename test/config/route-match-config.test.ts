import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';
import { diffRoutes } from '../../src/config/diff.js';
import { config } from '../helpers/node.js';

const issuesOf = (text: string) => {
  const r = parseConfig(text);
  return r.ok ? [] : r.issues.map(formatIssue);
};

test('match: routes share a TCP address by name; names are canonical; the default has no match', () => {
  const c = config(`routes:
  web-a: { listen: tcp://0.0.0.0:443, match: { sni: [A.Example.org.] }, upstream: 127.0.0.1:8443 }
  web-b: { listen: tcp://0.0.0.0:443, match: { sni: ["*.b.example.org"], alpn: [h2] }, upstream: 127.0.0.1:9443 }
  other: { listen: "tcp://0.0.0.0:443", upstream: 127.0.0.1:7443 }
`);
  assert.deepEqual(c.routes.map((r) => r.match), [{ sni: ['a.example.org'] }, { sni: ['*.b.example.org'], alpn: ['h2'] }, undefined]);
});

test('match: two defaults, a name twice, different PROXY policies and bad names are config errors with path and line', () => {
  assert.deepEqual(
    issuesOf(`routes:
  a:
    listen: tcp://0.0.0.0:443
    match: { sni: [a.example.org, "*.example.org"] }
    upstream: 127.0.0.1:1
  b:
    listen: tcp://0.0.0.0:443
    upstream: 127.0.0.1:2
  c:
    listen: tcp://0.0.0.0:443
    upstream: 127.0.0.1:3
  d:
    listen: tcp://0.0.0.0:443
    match: { sni: [A.example.org] }
    upstream: 127.0.0.1:4
    proxyProtocol: { accept: [10.0.0.0/8] }
  e:
    listen: udp://0.0.0.0:443
    match: { sni: [a.example.org] }
    upstream: 127.0.0.1:5
  f:
    listen: tcp://0.0.0.0:8443
    match: { sni: ["a..b", "x.*.org", "*"] }
    upstream: 127.0.0.1:6
`),
    [
      'routes.c.listen (line 10): tcp://0.0.0.0:443 is shared by name (match) and already has a default route without match: route "b" (line 7); give this route a match or another address',
      'routes.d.match.sni.0 (line 14): "a.example.org" on tcp://0.0.0.0:443 is already matched by route "a" (line 4); a name picks one route',
      'routes.d.proxyProtocol (line 16): routes sharing tcp://0.0.0.0:443 must have the same proxyProtocol accept, headerTimeout and maxHeaderBytes as route "a" (line 2): the PROXY header is read before the name picks a route',
      'routes.f.match.sni.0 (line 23): expected a host name such as app.example.org or a wildcard such as *.example.org; got "a..b"',
      'routes.f.match.sni.1 (line 23): expected a host name such as app.example.org or a wildcard such as *.example.org; got "x.*.org"',
      'routes.f.match.sni.2 (line 23): expected a host name such as app.example.org or a wildcard such as *.example.org; got "*"',
    ],
  );
});

test('match on udp:// (QUIC): routes share a UDP address by name; two defaults, a name twice and PROXY headers accepted there are config errors with path and line', () => {
  const c = config(`routes:
  h3-a: { listen: udp://0.0.0.0:443, match: { sni: [a.example.org], alpn: [h3] }, upstream: 127.0.0.1:8443 }
  h3-b: { listen: udp://0.0.0.0:443, match: { sni: ["*.b.example.org"] }, upstream: 127.0.0.1:9443 }
  other: { listen: udp://0.0.0.0:443, upstream: 127.0.0.1:7443 }
  web-a: { listen: tcp://0.0.0.0:443, match: { sni: [a.example.org] }, upstream: 127.0.0.1:8443 }
`);
  assert.deepEqual(c.routes.map((r) => r.match), [{ sni: ['a.example.org'], alpn: ['h3'] }, { sni: ['*.b.example.org'] }, undefined, { sni: ['a.example.org'] }]);
  assert.deepEqual(
    issuesOf(`routes:
  a: { listen: udp://0.0.0.0:443, match: { sni: [a.example.org] }, upstream: 127.0.0.1:1 }
  b: { listen: udp://0.0.0.0:443, upstream: 127.0.0.1:2 }
  c: { listen: udp://0.0.0.0:443, upstream: 127.0.0.1:3 }
  d: { listen: udp://0.0.0.0:443, match: { sni: [a.example.org] }, upstream: 127.0.0.1:4 }
  e: { listen: udp://0.0.0.0:443, match: { sni: [e.example.org] }, upstream: 127.0.0.1:5, proxyProtocol: { accept: [10.0.0.0/8] } }
`),
    [
      'routes.c.listen (line 4): udp://0.0.0.0:443 is shared by name (match) and already has a default route without match: route "b" (line 3); give this route a match or another address',
      'routes.d.match.sni.0 (line 5): "a.example.org" on udp://0.0.0.0:443 is already matched by route "a" (line 2); a name picks one route',
      'routes.e.proxyProtocol.accept (line 6): udp://0.0.0.0:443 is shared by QUIC server name (match): PROXY headers in front of client datagrams are not supported there; give this route its own address or drop proxyProtocol.accept',
    ],
  );
});

test('match: one name for two routes is fine when their ALPN lists do not overlap', () => {
  assert.deepEqual(
    issuesOf(`routes:
  web:  { listen: tcp://0.0.0.0:443, match: { sni: [a.example.org], alpn: [h2, http/1.1] }, upstream: 127.0.0.1:1 }
  acme: { listen: tcp://0.0.0.0:443, match: { sni: [a.example.org], alpn: [acme-tls/1] }, upstream: 127.0.0.1:2 }
  any:  { listen: tcp://0.0.0.0:443, match: { sni: [a.example.org] }, upstream: 127.0.0.1:3 }
`),
    ['routes.any.match.sni.0 (line 4): "a.example.org" on tcp://0.0.0.0:443 is already matched by route "web" (line 2) for the same ALPN; a name picks one route'],
  );
});

test('listen overlap still holds around a shared address: another address covering it, or two routes without match', () => {
  assert.deepEqual(
    issuesOf(`routes:
  a: { listen: tcp://127.0.0.1:443, match: { sni: [a.example.org] }, upstream: 127.0.0.1:1 }
  b: { listen: tcp://0.0.0.0:443, match: { sni: [b.example.org] }, upstream: 127.0.0.1:2 }
  c: { listen: tcp://127.0.0.1:80, upstream: 127.0.0.1:3 }
  d: { listen: tcp://127.0.0.1:80, upstream: 127.0.0.1:4 }
`),
    [
      'routes.b.listen (line 3): tcp://0.0.0.0:443 overlaps the listen address of route "a" (routes.a.listen, line 2: tcp://127.0.0.1:443); both cannot be bound',
      'routes.d.listen (line 5): tcp://127.0.0.1:80 is already the listen address of route "c" (routes.c.listen, line 4); both cannot be bound',
    ],
  );
});

test('reload: a route moving between its own listener and a shared one is rebuilt, not updated in place', () => {
  const before = config(`routes:\n  a: { listen: tcp://127.0.0.1:443, upstream: 127.0.0.1:1 }\n`);
  const after = config(`routes:
  a: { listen: tcp://127.0.0.1:443, upstream: 127.0.0.1:1 }
  b: { listen: tcp://127.0.0.1:443, match: { sni: [b.example.org] }, upstream: 127.0.0.1:2 }
`);
  const d = diffRoutes(before.routes, after.routes);
  assert.deepEqual(d.rebuilt.map((r) => r.name), ['a']);
  assert.deepEqual(d.added.map((r) => r.name), ['b']);
  const changed = diffRoutes(after.routes, config(`routes:
  a: { listen: tcp://127.0.0.1:443, upstream: 127.0.0.1:9 }
  b: { listen: tcp://127.0.0.1:443, match: { sni: [c.example.org] }, upstream: 127.0.0.1:2 }
`).routes);
  assert.deepEqual([changed.changed.map((r) => r.name), changed.rebuilt], [['a', 'b'], []]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';

test('sourcePrefix: a route inherits the top-level one, its own wins, absent means the default; bad lengths name the key', () => {
  const r = parseConfig(`
sourcePrefix: { ipv6: 56 }
routes:
  a: { listen: "udp://127.0.0.1:0", upstream: "127.0.0.1:53" }
  b: { listen: "udp://127.0.0.1:0", upstream: "127.0.0.1:53", sourcePrefix: { ipv4: 24 } }
`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  if (!r.ok) return;
  assert.deepEqual(r.config.routes[0]!.sourcePrefix, { ipv4: 32, ipv6: 56 });
  assert.deepEqual(r.config.routes[1]!.sourcePrefix, { ipv4: 24, ipv6: 64 });
  const plain = parseConfig(`routes:\n  a: { listen: "udp://127.0.0.1:0", upstream: "127.0.0.1:53" }\n`);
  assert.ok(plain.ok && plain.config.routes[0]!.sourcePrefix === undefined, 'absent: the limits use IPv4 /32, IPv6 /64');
  const bad = parseConfig(`routes:\n  a:\n    listen: "udp://127.0.0.1:0"\n    upstream: "127.0.0.1:53"\n    sourcePrefix: { ipv6: 129 }\n`);
  assert.ok(!bad.ok);
  if (bad.ok) return;
  assert.equal(bad.issues[0]!.path, 'routes.a.sourcePrefix.ipv6');
  assert.equal(bad.issues[0]!.line, 5);
});

test('sourcePrefix: gateway exposures inherit the top-level one', () => {
  const gw = `gateway:\n  listen: 127.0.0.1:7000\n  stateDir: /tmp/sluice-test-state\n  agents:\n    home: { token: "0123456789abcdef0123" }\n  ports: 1024-65535\n`;
  const r = parseConfig(`sourcePrefix: { ipv6: 48 }\n${gw}`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  if (r.ok) assert.deepEqual(r.config.gateway!.services.sourcePrefix, { ipv4: 32, ipv6: 48 });
  const plain = parseConfig(gw);
  assert.ok(plain.ok && plain.config.gateway!.services.sourcePrefix === undefined);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatByteRate, parseByteRate, parseByteSize } from '../../src/core/byte-rate.js';

test('byte rates: bit and byte units, decimal and binary; ambiguous or malformed texts are errors naming the input', () => {
  assert.equal(parseByteRate('10Mbit/s'), 1_250_000);
  assert.equal(parseByteRate('500kbit/s'), 62_500);
  assert.equal(parseByteRate('1Gbit/s'), 125_000_000);
  assert.equal(parseByteRate('800bit/s'), 100);
  assert.equal(parseByteRate('100Mbps'), 12_500_000);
  assert.equal(parseByteRate('2MB/s'), 2_000_000);
  assert.equal(parseByteRate('1MiB/s'), 1_048_576);
  assert.equal(parseByteRate('100B/s'), 100);
  assert.equal(parseByteRate('1.5 Mbit/s'), 187_500);
  for (const bad of ['10Mb/s', '10', 'fast', '10M', '-1Mbit/s', '10Mbit']) assert.match(String(parseByteRate(bad)), /expected a rate such as 10Mbit\/s/, bad);
  assert.match(String(parseByteRate('1bit/s')), /less than 1 byte per second/);
  assert.equal(parseByteSize('64KiB'), 65_536);
  assert.equal(parseByteSize('1MB'), 1_000_000);
  assert.equal(parseByteSize(5000), 5000);
  assert.match(String(parseByteSize('64K')), /expected a size such as 64KiB/);
  assert.equal(formatByteRate(1_250_000), '10Mbit/s');
});

test('bandwidth config: a rate is both directions, { up, down } each, burst defaults to 100 ms of the rate (at least 64 KiB)', () => {
  const r = parseConfig(`
routes:
  a:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:53
    bandwidth: { perSource: 10Mbit/s, perRoute: { down: 200Mbit/s } }
  b:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:53
    bandwidth: { perSource: { up: 1Mbit/s }, burst: 1MB }
  c: { listen: "udp://127.0.0.1:0", upstream: "127.0.0.1:53" }
`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  if (!r.ok) return;
  const [a, b, c] = r.config.routes;
  assert.deepEqual(a!.bandwidth, {
    perSource: { up: { perSecond: 1_250_000, burst: 125_000 }, down: { perSecond: 1_250_000, burst: 125_000 } },
    perRoute: { down: { perSecond: 25_000_000, burst: 2_500_000 } },
  });
  assert.deepEqual(b!.bandwidth, { perSource: { up: { perSecond: 125_000, burst: 1_000_000 } } });
  assert.equal(c!.bandwidth, undefined);
});

test('bandwidth config: bad values name the key and line', () => {
  const bad = parseConfig(`routes:\n  a:\n    listen: "udp://127.0.0.1:0"\n    upstream: "127.0.0.1:53"\n    bandwidth: { perSource: 10Mb/s }\n`);
  assert.ok(!bad.ok);
  if (bad.ok) return;
  assert.equal(bad.issues[0]!.path, 'routes.a.bandwidth.perSource');
  assert.equal(bad.issues[0]!.line, 5);
  assert.match(bad.issues[0]!.message, /10Mb\/s/);
  const unknown = parseConfig(`routes:\n  a:\n    listen: "udp://127.0.0.1:0"\n    upstream: "127.0.0.1:53"\n    bandwidth: { perClient: 10Mbit/s }\n`);
  assert.ok(!unknown.ok && unknown.issues.some((i) => i.path.startsWith('routes.a.bandwidth')));
});

test('bandwidth config: gateway services and agents carry their own limits', () => {
  const r = parseConfig(`
gateway:
  listen: 127.0.0.1:7000
  stateDir: /tmp/sluice-test-state
  ports: 1024-65535
  services: { bandwidth: { perRoute: 100Mbit/s } }
  agents:
    home: { token: "0123456789abcdef0123", bandwidth: { perSource: 1Mbit/s, perAgent: { down: 50Mbit/s } } }
    work: { token: "0123456789abcdef0124" }
`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  if (!r.ok) return;
  const g = r.config.gateway!;
  assert.equal(g.services.bandwidth?.perRoute?.up?.perSecond, 12_500_000);
  assert.equal(g.agents.get('home')!.bandwidth?.perSource?.down?.perSecond, 125_000);
  assert.equal(g.agents.get('home')!.bandwidth?.perAgent?.down?.perSecond, 6_250_000);
  assert.equal(g.agents.get('home')!.bandwidth?.perAgent?.up, undefined);
  assert.equal(g.agents.get('work')!.bandwidth, undefined);
});

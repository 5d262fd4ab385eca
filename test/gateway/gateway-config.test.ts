import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { normaliseFingerprint, parsePortRanges } from '../../src/config/gateway-schema.js';

const FP = `sha256:${'AB:'.repeat(31)}AB`;

test('the issue example parses, with the documented defaults', () => {
  const r = parseConfig(`
gateway:
  listen: 0.0.0.0:7000
  agents:
    home: { token: "0123456789abcdef0123" }
  ports: 20000-20100
agent:
  name: home
  gateway: gw.example.net:7000
  token: "0123456789abcdef0123"
  fingerprint: ${FP}
  expose:
    wg:  { local: 127.0.0.1:51820, remote: udp://0.0.0.0:20001 }
    ssh: { local: 127.0.0.1:22,    remote: tcp://0.0.0.0:20002, proxyProtocol: v2 }
`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const g = r.config.gateway!;
  assert.deepEqual(g.listen, { host: '0.0.0.0', port: 7000 });
  assert.deepEqual(g.ports, [[20000, 20100]]);
  assert.deepEqual(g.agents.get('home')!.ports, [[20000, 20100]]);
  assert.equal(g.stateDir, 'sluice-state');
  assert.equal(g.keepaliveIntervalMs, 15_000);
  assert.equal(g.handshakeTimeoutMs, 10_000);
  assert.equal(g.resumeGraceMs, 30_000);
  assert.deepEqual(g.authBackoff, { after: 5, initialMs: 1000, maxMs: 60_000 });
  const a = r.config.agent!;
  assert.equal(a.fingerprint, 'ab'.repeat(32));
  assert.deepEqual(a.expose.map((e) => [e.name, e.remote!.transport, e.remote!.port, e.proxyProtocol]), [
    ['wg', 'udp', 20001, 'off'],
    ['ssh', 'tcp', 20002, 'v2'],
  ]);
  assert.deepEqual(a.reconnect, { initialMs: 500, maxMs: 30_000 });
});

test('mistakes are reported with their path and line', () => {
  const r = parseConfig(`
gateway:
  listen: 0.0.0.0:7000
  agents:
    home: { token: "short" }
  ports: 20100-20000
agent:
  name: home
  gateway: gw.example.net:7000
  token: "0123456789abcdef0123"
  expose:
    a: { local: 127.0.0.1:1, remote: udp://0.0.0.0:20001, proxyProtocol: v1 }
    b: { local: 127.0.0.1:2, remote: udp://0.0.0.0:20001 }
    c: { local: 127.0.0.1:3, remote: tcp://0.0.0.0:20002, colour: blue }
`);
  assert.ok(!r.ok);
  const byPath = new Map(r.issues.map((i) => [i.path, i]));
  assert.match(byPath.get('gateway.agents.home.token')!.message, /at least 16/);
  assert.equal(byPath.get('gateway.agents.home.token')!.line, 5);
  assert.match(byPath.get('gateway.ports')!.message, /not a range/);
  assert.match(byPath.get('agent.expose.c.colour')!.message, /unknown key/);
  // Cross-key checks run once the fields are valid.
  const fixed = parseConfig(`
agent:
  name: home
  gateway: gw.example.net:7000
  token: "0123456789abcdef0123"
  expose:
    a: { local: 127.0.0.1:1, remote: udp://0.0.0.0:20001, proxyProtocol: v1 }
    b: { local: 127.0.0.1:2, remote: udp://0.0.0.0:20001 }
`);
  assert.ok(!fixed.ok);
  const messages = fixed.issues.map((i) => `${i.path}: ${i.message}`);
  assert.ok(messages.some((m) => /^agent: set fingerprint/.test(m)), messages.join('\n'));
  assert.ok(messages.some((m) => /agent.expose.a.proxyProtocol: v1 is TCP only/.test(m)));
  assert.ok(messages.some((m) => /agent.expose.b.remote: udp port 20001 is already asked for by "a"/.test(m)));
});

test('port ranges and fingerprints', () => {
  assert.deepEqual(parsePortRanges('20000-20100'), [[20000, 20100]]);
  assert.deepEqual(parsePortRanges(20001), [[20001, 20001]]);
  assert.deepEqual(parsePortRanges(['30000-30010', 25000]), [[25000, 25000], [30000, 30010]]);
  assert.equal(typeof parsePortRanges('0-10'), 'string');
  assert.equal(typeof parsePortRanges('abc'), 'string');
  assert.equal(normaliseFingerprint(FP), 'ab'.repeat(32));
  assert.equal(normaliseFingerprint(`sha256:${'cd'.repeat(32)}`), 'cd'.repeat(32));
  assert.equal(normaliseFingerprint('sha1:abcd'), undefined);
  assert.equal(normaliseFingerprint(`sha256:${'cd'.repeat(31)}`), undefined);
});

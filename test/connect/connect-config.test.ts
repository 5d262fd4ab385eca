import test from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';

const head = `agent:
  name: laptop
  gateway: gw.example.net:7000
  token: "0123456789abcdef0123"
  fingerprint: sha256:${'ab'.repeat(32)}
`;

test('connect and peer keys: defaults', () => {
  const r = parseConfig(`${head}  expose:\n    wg: { local: 127.0.0.1:51820, peers: [home] }\n  connect:\n    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:51821 }\n`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const a = r.config.agent!;
  assert.equal(a.expose[0]!.remote, undefined);
  assert.equal(a.expose[0]!.transport, 'udp');
  assert.deepEqual(a.expose[0]!.peers, ['home']);
  assert.equal(a.connect[0]!.path, 'auto');
  assert.equal(a.connect[0]!.listen.transport, 'udp');
  assert.equal(a.peerIdleTimeoutMs, 15 * 60_000);
  assert.equal(a.directRetryMs, 30_000);
  assert.deepEqual(a.peerCandidates, ['public']);
  assert.equal(a.icePolicy, 'all');
});

test('connect and peer keys: every problem named with its path and line', () => {
  const r = parseConfig(`${head}  expose:
    lonely: { local: 127.0.0.1:1 }
    self: { local: 127.0.0.1:2, peers: [laptop] }
    mixed: { local: 127.0.0.1:3, remote: udp://0.0.0.0:20001, transport: tcp, peers: [home] }
  connect:
    me: { peer: laptop, service: x, listen: udp://127.0.0.1:1 }
  icePolicy: relay
`);
  assert.ok(!r.ok);
  const messages = r.issues.map((i) => `${i.path} (line ${i.line}): ${i.message}`);
  const has = (re: RegExp) => assert.ok(messages.some((m) => re.test(m)), `${re} in\n${messages.join('\n')}`);
  has(/^agent.expose.lonely \(line 7\): set remote \(a public port on the gateway\), peers/);
  has(/^agent.expose.self.peers .*"laptop" is this agent itself/);
  has(/^agent.expose.mixed.transport .*is tcp but remote is udp:\/\//);
  has(/^agent.connect.me.peer .*this agent itself/);
  has(/^agent.icePolicy .*relay needs at least one entry in turnServers/);
  const bad = parseConfig(`${head}  connect:\n    x: { peer: home, service: wg, listen: sctp://1.2.3.4:5, path: sideways }\n  peerCandidates: [metadata]\n`);
  assert.ok(!bad.ok);
  const paths = bad.issues.map((i) => i.path);
  assert.ok(paths.includes('agent.connect.x.listen'), paths.join(','));
  assert.ok(paths.includes('agent.connect.x.path'), paths.join(','));
  assert.ok(paths.some((p) => p.startsWith('agent.peerCandidates')), paths.join(','));
});

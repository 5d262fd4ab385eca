import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';

const head = `agent:
  name: laptop
  gateway: 127.0.0.1:7000
  token: "0123456789abcdef0123"
  fingerprint: sha256:${'ab'.repeat(32)}
`;

test('STUN and TURN servers must be IP addresses: a name is refused at load with its key and line, not at the first ICE attempt', () => {
  const ok = parseConfig(`${head}  stunServers: ["198.51.100.1:3478", "[2001:db8::1]:3478"]\n  turnServers: [{ server: "198.51.100.2:3478", username: u, password: p }]\n`);
  assert.ok(ok.ok, JSON.stringify(!ok.ok && ok.issues));
  const stun = parseConfig(`${head}  stunServers:\n    - stun.example.net:3478\n`);
  assert.ok(!stun.ok);
  if (!stun.ok) {
    assert.equal(stun.issues[0]!.path, 'agent.stunServers.0');
    assert.equal(stun.issues[0]!.line, 7);
    assert.match(stun.issues[0]!.message, /"stun.example.net" is a name; write the server's IP address/);
  }
  const turn = parseConfig(`${head}  turnServers:\n    - { server: turn.example.net:3478, username: u, password: p }\n`);
  assert.ok(!turn.ok && turn.issues[0]!.path === 'agent.turnServers.0.server', JSON.stringify(!turn.ok && turn.issues));
});

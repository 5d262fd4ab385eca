import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentChange } from '../../src/agent/agent-change.js';
import { agentConfig } from '../gateway/expose-helpers.js';

const gw = { port: 7000, fingerprint: `sha256:${'ab'.repeat(32)}` };
const wg = '    wg: { local: 127.0.0.1:51820, remote: udp://0.0.0.0:20001 }';

test('agentChange: what a reload may apply to a running agent', () => {
  const base = agentConfig(gw, wg);
  assert.equal(agentChange(base, agentConfig(gw, wg)), 'none');
  assert.equal(agentChange(base, agentConfig({ ...gw, port: 7001 }, wg)), 'connection', 'gateway address');
  assert.equal(agentChange(base, agentConfig({ ...gw, fingerprint: `sha256:${'cd'.repeat(32)}` }, wg)), 'connection', 'pin');
  const token = structuredClone(base) as { token: string };
  token.token = 'another-token-0123456789';
  assert.equal(agentChange(base, token as typeof base), 'connection', 'token');
  assert.equal(agentChange(base, agentConfig(gw, '    wg: { local: 127.0.0.1:51821, remote: udp://0.0.0.0:20001 }')), 'restart', 'a service');
  assert.equal(agentChange(base, agentConfig(gw, wg, '  streamWindow: 65536\n')), 'restart');
});

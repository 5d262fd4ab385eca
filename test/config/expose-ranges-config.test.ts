import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';

/* agent.expose with port ranges and names, gateway.names and agents.<name>.names (docs/expose.md). */

const FP = 'sha256:' + 'ab'.repeat(32);
const agent = (expose: string) =>
  `agent:\n  name: home\n  gateway: 127.0.0.1:7000\n  token: "0123456789abcdef0123"\n  fingerprint: "${FP}"\n  expose:\n${expose}`;
const issuesOf = (text: string) => {
  const r = parseConfig(text);
  return r.ok ? [] : r.issues.map(formatIssue);
};

test('expose config: a local range and a same-sized remote range, one local port for a range, and names compile', () => {
  const r = parseConfig(agent([
    '    media: { local: "127.0.0.1:50000-50099", remote: "udp://0.0.0.0:40000-40099" }',
    '    dns: { local: "127.0.0.1:53", remote: "udp://0.0.0.0:5300-5309" }',
    '    site: { local: "127.0.0.1:8443", remote: "tls://App.Example.org." }',
    '    h3: { local: "127.0.0.1:8443", remote: "quic://*.b.example.org" }',
  ].join('\n')));
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const [media, dns, site, h3] = r.config.agent!.expose;
  assert.deepEqual([media!.local.port, media!.remote!.port, media!.remotePorts, media!.localRange, media!.transport], [50000, 40000, 100, true, 'udp']);
  assert.deepEqual([dns!.local.port, dns!.remotePorts, dns!.localRange], [53, 10, false]);
  assert.deepEqual([site!.transport, site!.serverName, site!.remote!.port, site!.remotePorts], ['tcp', 'app.example.org', 0, undefined]);
  assert.deepEqual([h3!.transport, h3!.serverName], ['udp', '*.b.example.org']);
});

test('expose config: ranges of other sizes, a local range for one port, overlaps and bad names name the key and line', () => {
  assert.deepEqual(issuesOf(agent('    media: { local: "127.0.0.1:50000-50009", remote: "udp://0.0.0.0:40000-40099" }')), [
    'agent.expose.media.local (line 7): local holds 10 ports but remote holds 100; give a range of 100 ports or one port (every public port goes to it)',
  ]);
  assert.deepEqual(issuesOf(agent('    media: { local: "127.0.0.1:50000-50009", remote: "udp://0.0.0.0:40000" }')), [
    'agent.expose.media.local (line 7): local is a range of 10 ports but remote is one port; give remote a range of 10 ports or local one port',
  ]);
  assert.deepEqual(issuesOf(agent('    a: { local: "127.0.0.1:1", remote: "udp://0.0.0.0:40000-40099" }\n    b: { local: "127.0.0.1:2", remote: "udp://0.0.0.0:40099-40100" }\n    c: { local: "127.0.0.1:3", remote: "tcp://0.0.0.0:40050" }')), [
    'agent.expose.b.remote (line 8): udp ports 40099-40100 overlap ports 40000-40099 of "a"',
  ]);
  assert.deepEqual(issuesOf(agent('    a: { local: "127.0.0.1:1", remote: "udp://0.0.0.0:40010-40000" }')), [
    'agent.expose.a.remote (line 7): port range 40010-40000 is reversed; write 40000-40010 (or tls://name, quic://name for the gateway\'s shared port)',
  ]);
  assert.deepEqual(issuesOf(agent('    a: { local: "127.0.0.1:1", remote: "tls://app.example.org:443" }')), [
    'agent.expose.a.remote (line 7): tls:// takes a server name such as app.example.org or *.example.org (the gateway\'s shared port is used, no port here); got "app.example.org:443"',
  ]);
  assert.deepEqual(issuesOf(agent('    a: { local: "127.0.0.1:1", remote: "tls://a.org" }\n    b: { local: "127.0.0.1:2", remote: "tls://A.org" }\n    c: { local: "127.0.0.1:3", remote: "quic://a.org" }')), [
    'agent.expose.b.remote (line 8): a.org is already claimed by "a" (tls://)',
  ]);
  assert.deepEqual(issuesOf(agent('    a: { local: "127.0.0.1:1", remote: "udp://0.0.0.0:40000-40001", peers: [laptop] }')), [
    'agent.expose.a.peers (line 7): a port range is published on the gateway only; peers reach one port (expose a single port for them)',
  ]);
});

test('gateway config: names ports and each agent\'s names policy compile; an empty policy or no port is an error with its line', () => {
  const gw = (extra: string, agentExtra = '') =>
    `gateway:\n  listen: 127.0.0.1:7000\n  ports: 20000-20099\n  agents:\n    home: { token: "0123456789abcdef0123"${agentExtra} }\n${extra}`;
  const r = parseConfig(gw('  names: { tls: "0.0.0.0:443", quic: "[::]:443" }\n', ', names: [app.example.org, "*.Home.example.org"]'));
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  assert.deepEqual(r.config.gateway!.names, { tls: { transport: 'tcp', host: '0.0.0.0', port: 443 }, quic: { transport: 'udp', host: '::', port: 443 } });
  assert.deepEqual(r.config.gateway!.agents.get('home')!.names, ['app.example.org', '*.home.example.org']);
  assert.deepEqual(issuesOf(gw('  names: {}\n')), ['gateway.names (line 6): set tls (TCP, e.g. 0.0.0.0:443), quic (UDP, e.g. 0.0.0.0:443) or both']);
  assert.deepEqual(issuesOf(gw('', ', names: []')), ['gateway.agents.home.names (line 5): list at least one name, or leave names out (the agent may then claim none)']);
  assert.deepEqual(issuesOf(gw('  names: { tls: "0.0.0.0:7000" }\n')), ['gateway.names.tls (line 6): port 7000 is the agent endpoint\'s own (gateway.listen); pick another']);
});

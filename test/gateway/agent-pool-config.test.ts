import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';

const FP = `sha256:${'AB:'.repeat(31)}AB`;
const KEY = 'group-key-0123456789';

test('agent pools: gateway.groups and expose group/groupKey/health parse, with the documented defaults', () => {
  const r = parseConfig(`
gateway:
  listen: 0.0.0.0:7000
  agents:
    home: { token: "0123456789abcdef0123" }
    office: { token: "0123456789abcdef0124" }
  ports: 20000-20100
  groups:
    wg-ha: { agents: [home, office], key: "${KEY}" }
    ssh-ha: { agents: [home], key: "${KEY}", balance: round-robin, udp: { failover: keep } }
agent:
  name: home
  gateway: gw.example.net:7000
  token: "0123456789abcdef0123"
  fingerprint: ${FP}
  expose:
    wg:
      local: 127.0.0.1:51820
      remote: udp://0.0.0.0:20001
      group: wg-ha
      groupKey: "${KEY}"
      health: { udp: { send: "hex:ffffffff54", expect: "hex:ffffffff49" } }
    ssh: { local: 127.0.0.1:22, remote: tcp://0.0.0.0:20002, group: ssh-ha, groupKey: "${KEY}", health: { tcp: { interval: 5s, timeout: 2s, rise: 1, fall: 2 } } }
    plain: { local: 127.0.0.1:23, remote: tcp://0.0.0.0:20003 }
`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const g = r.config.gateway!;
  assert.deepEqual(g.groups.get('wg-ha'), { name: 'wg-ha', agents: ['home', 'office'], key: KEY, balance: undefined, udpFailover: 'move' });
  assert.deepEqual(g.groups.get('ssh-ha'), { name: 'ssh-ha', agents: ['home'], key: KEY, balance: 'round-robin', udpFailover: 'keep' });
  const [wg, ssh, plain] = r.config.agent!.expose;
  assert.deepEqual(wg!.pool, {
    group: 'wg-ha',
    groupKey: KEY,
    health: { kind: 'udp', intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3, sendHex: 'ffffffff54', expectHex: 'ffffffff49' },
  });
  assert.deepEqual(ssh!.pool!.health, { kind: 'tcp', intervalMs: 5000, timeoutMs: 2000, rise: 1, fall: 2, sendHex: undefined, expectHex: undefined });
  assert.equal(plain!.pool, undefined);
  assert.equal(parseConfig('gateway: { listen: 0.0.0.0:7000, agents: {}, ports: 1 }').ok && true, true);
});

test('agent pools: mistakes are reported with their path and line', () => {
  const first = `
gateway:
  listen: 0.0.0.0:7000
  agents:
    home: { token: "0123456789abcdef0123" }
  ports: 20000-20100
  groups:
    ha: { agents: [home, stranger], key: "${KEY}" }
    short: { agents: [home], key: "abc" }
    "bad name": { agents: [home], key: "${KEY}" }
    lb: { agents: [home], key: "${KEY}", balance: random }
agent:
  name: home
  gateway: gw.example.net:7000
  token: "0123456789abcdef0123"
  fingerprint: ${FP}
  expose:
    nokey: { local: 127.0.0.1:1, remote: udp://0.0.0.0:20001, group: ha }
    anyport: { local: 127.0.0.1:2, remote: udp://0.0.0.0:0, group: ha, groupKey: "${KEY}" }
    lone: { local: 127.0.0.1:3, remote: tcp://0.0.0.0:20003, health: { tcp: {} } }
    both: { local: 127.0.0.1:4, remote: udp://0.0.0.0:20004, group: ha, groupKey: "${KEY}", health: { tcp: {}, udp: { send: x } } }
    wrongkind: { local: 127.0.0.1:5, remote: tcp://0.0.0.0:20005, group: ha, groupKey: "${KEY}", health: { udp: { send: x } } }
    badhex: { local: 127.0.0.1:6, remote: udp://0.0.0.0:20006, group: ha, groupKey: "${KEY}", health: { udp: { send: "hex:abc" } } }
    slow: { local: 127.0.0.1:7, remote: tcp://0.0.0.0:20007, group: ha, groupKey: "${KEY}", health: { tcp: { interval: 1s, timeout: 2s } } }
    span: { local: "127.0.0.1:30-31", remote: "udp://0.0.0.0:20010-20011", group: ha, groupKey: "${KEY}" }
    named: { local: 127.0.0.1:8, remote: tls://app.example.org, group: ha, groupKey: "${KEY}" }
`;
  const r = parseConfig(first);
  assert.ok(!r.ok);
  const byPath = new Map(r.issues.map((i) => [i.path, i]));
  const has = (path: string, re: RegExp, line?: number) => {
    const i = byPath.get(path);
    assert.ok(i, `no issue at ${path}: ${JSON.stringify(r.issues.map((x) => [x.path, x.message]))}`);
    assert.match(i.message, re);
    if (line !== undefined) assert.equal(i.line, line, path);
  };
  has('gateway.groups.short.key', /at least 16/, 9);
  has('gateway.groups.lb.balance', /source-hash|round-robin/, 11);
  has('gateway.groups.bad name', /map of group names/, 10);
  has('agent.expose.both.health', /one of tcp: or udp:/, 21);
  has('agent.expose.badhex.health.udp.send', /even number of hex digits/, 23);
  // Cross-key checks run once the fields are valid: the same file without the field mistakes.
  const lines = first.split('\n');
  const drop = ['short:', '"bad name":', 'lb:', 'both:', 'badhex:'];
  const fixed = parseConfig(lines.filter((l) => !drop.some((d) => l.trim().startsWith(d))).join('\n'));
  assert.ok(!fixed.ok);
  byPath.clear();
  for (const i of fixed.issues) byPath.set(i.path, i);
  has('gateway.groups.ha.agents.1', /"stranger" is not in gateway.agents/, 8);
  has('agent.expose.nokey.groupKey', /needs its key/);
  has('agent.expose.anyport.remote', /fixed port/);
  has('agent.expose.lone.health', /set group/);
  has('agent.expose.wrongkind.health.udp', /use tcp:/);
  has('agent.expose.slow.health.tcp.timeout', /at most interval/);
  has('agent.expose.span.remote', /port ranges are not pooled/);
  // A name is a pool's remote like a port (docs/sni.md, "Pools by name").
  assert.equal(byPath.get('agent.expose.named.remote'), undefined);
});

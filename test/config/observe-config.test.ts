import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';
import { parseSizeBytes } from '../../src/core/size.js';

function problems(yaml: string): string[] {
  const r = parseConfig(yaml);
  assert.equal(r.ok, false, 'expected the config to be refused');
  return r.ok ? [] : r.issues.map(formatIssue);
}

function ok(yaml: string) {
  const r = parseConfig(yaml);
  if (!r.ok) assert.fail(r.issues.map(formatIssue).join('\n'));
  return r.config;
}

test('observe config: defaults (metrics off without admin, flow log off, conntrack off)', () => {
  const c = ok('routes: {}\n');
  assert.deepEqual(c.metrics, { process: false });
  assert.deepEqual(c.flowLog, { output: 'off', updateIntervalMs: 60_000, maxBytes: 100 * 1024 * 1024, maxFiles: 5 });
  assert.equal(c.admin, undefined);
  assert.deepEqual(c.conntrack, {
    enabled: false,
    localNetworks: [],
    marks: undefined,
    unknownDirection: 'skip',
    accounting: true,
    timestamps: false,
    command: ['conntrack'],
    netlinkBufferBytes: 4 * 1024 * 1024,
    maxTrackedFlows: 65_536,
    backoff: { initialMs: 5_000, maxMs: 300_000, multiplier: 2, jitter: 0.5, resetAfterMs: 60_000 },
  });
  assert.ok(Object.isFrozen(c.flowLog) && Object.isFrozen(c.conntrack.backoff), 'frozen like the rest');
});

test('observe config: every key written out', () => {
  const c = ok(`
metrics: { process: true }
flowLog:
  output: /var/log/sluice/flows.jsonl
  updateInterval: 30s
  maxBytes: 10MiB
  maxFiles: 3
conntrack:
  enabled: true
  localNetworks: [203.0.113.10, 10.0.0.0/24, 2001:db8:1::/64]
  marks: { ingress: 0x10, egress: 0x20, mask: 0xf0 }
  unknownDirection: ingress
  accounting: false
  timestamps: true
  command: [ip, netns, exec, ns1, conntrack]
  netlinkBufferBytes: 0
  maxTrackedFlows: 1000
  backoff: { initial: 1s, max: 1m, multiplier: 3, jitter: 0.2, resetAfter: 30s }
admin:
  listen: "[::1]:9090"
  token: 0123456789abcdef0123
`);
  assert.deepEqual(c.metrics, { process: true });
  assert.deepEqual(c.flowLog, { output: '/var/log/sluice/flows.jsonl', updateIntervalMs: 30_000, maxBytes: 10 * 1024 * 1024, maxFiles: 3 });
  assert.deepEqual(c.conntrack.marks, { ingress: 16, egress: 32, mask: 240 });
  assert.deepEqual(c.conntrack.backoff, { initialMs: 1000, maxMs: 60_000, multiplier: 3, jitter: 0.2, resetAfterMs: 30_000 });
  assert.deepEqual(c.conntrack.command, ['ip', 'netns', 'exec', 'ns1', 'conntrack']);
  assert.equal(c.conntrack.unknownDirection, 'ingress');
  assert.deepEqual(c.admin, { listen: { host: '::1', port: 9090, family: 6 }, token: '0123456789abcdef0123', tls: undefined });
  assert.equal(ok('flowLog: { maxBytes: 4096 }\n').flowLog.maxBytes, 4096, 'a plain number is bytes');
  assert.equal(ok('admin: { listen: 0.0.0.0:9090, token: 0123456789abcdef0123, allowPlaintext: true }\n').admin?.listen.host, '0.0.0.0');
});

test('observe config: a non-loopback admin listener without a token is an error, with its line', () => {
  assert.deepEqual(problems('routes: {}\nadmin:\n  listen: 0.0.0.0:9090\n  allowPlaintext: true\n'), [
    'admin.token (line 2): is required when admin.listen is not a loopback address (0.0.0.0)',
  ]);
  assert.deepEqual(problems('admin:\n  listen: "[::]:9090"\n  allowPlaintext: true\n'), ['admin.token (line 1): is required when admin.listen is not a loopback address (::)']);
  assert.equal(ok('admin: { listen: 127.0.0.2:9090 }\n').admin?.token, undefined, '127/8 is loopback');
  assert.deepEqual(problems('admin:\n  listen: 127.0.0.1:9090\n  token: short\n'), ['admin.token (line 3): must be at least 16 characters (use e.g. `openssl rand -hex 32`)']);
  assert.deepEqual(problems('admin:\n  listen: 127.0.0.1:9090\n  token: "with a space in it!!"\n'), ['admin.token (line 3): must be visible ASCII without spaces']);
  assert.deepEqual(problems('admin:\n  listen: localhost:9090\n'), ['admin.listen (line 2): the admin listen host must be an IP address, got "localhost"']);
  assert.match(problems('admin:\n  listen: 127.0.0.1\n')[0]!, /^admin\.listen \(line 2\): expected IP:PORT/);
  assert.deepEqual(problems('admin: { listen: 127.0.0.1:1, tokn: x }\n'), ['admin.tokn (line 1): unknown key "tokn" (did you mean "token"?)']);
  assert.deepEqual(problems('admin: {}\n'), ['admin.listen (line 1): is required']);
});

test('observe config: sizes, durations, networks, marks and backoff are checked with their paths', () => {
  assert.deepEqual(problems('flowLog:\n  maxBytes: 10XB\n  updateInterval: soon\n  maxFiles: -1\n'), [
    'flowLog.maxBytes (line 2): expected a size such as 100MiB, 512KiB or a whole number of bytes above 0; got "10XB"',
    'flowLog.updateInterval (line 3): expected a duration such as 30s, 10m, 250ms; got "soon"',
    'flowLog.maxFiles (line 4): must be at least 0; got the number -1',
  ]);
  assert.deepEqual(problems('flowLog:\n  output: x\nconntrack:\n  localNetworks: [10.0.0.1/8]\n  marks: { ingress: 1, egress: 1 }\n  backoff: { initial: 10s, max: 5s, jitter: 2 }\n  command: []\n'), [
    'conntrack.localNetworks.0 (line 4): "10.0.0.1/8" has host bits set: write 10.0.0.0/8 for the network, or 10.0.0.1/32 for one address',
    'conntrack.marks.egress (line 5): ingress and egress must differ',
    'conntrack.backoff.jitter (line 6): must be at most 1; got the number 2',
    'conntrack.backoff.max (line 6): must be at least backoff.initial',
    'conntrack.command (line 7): needs at least 1 entry',
  ]);
  assert.deepEqual(problems('conntrack: { backoff: { initial: 10s, max: 5s } }\n'), ['conntrack.backoff.max (line 1): must be at least backoff.initial']);
  assert.deepEqual(problems('conntrack:\n  enabled: true\n'), ['conntrack.enabled (line 2): kernel flow records are written to the flow log: set flowLog.output too']);
  assert.deepEqual(problems('metrics: { proces: true }\n'), ['metrics.proces (line 1): unknown key "proces" (did you mean "process"?)']);
});

test('parseSizeBytes', () => {
  assert.equal(parseSizeBytes('100MiB'), 104_857_600);
  assert.equal(parseSizeBytes('1.5KiB'), 1536);
  assert.equal(parseSizeBytes('2 GB'), 2e9);
  assert.equal(parseSizeBytes('512'), 512);
  assert.equal(parseSizeBytes(512), 512);
  assert.equal(parseSizeBytes('1.5B'), undefined, 'whole bytes only');
  assert.equal(parseSizeBytes('10mb'), undefined, 'units are case-sensitive');
  assert.equal(parseSizeBytes(-1), undefined);
});

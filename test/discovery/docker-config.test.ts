import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';

test('docker: defaults', () => {
  const r = parseConfig('docker: {}\n');
  assert.ok(r.ok);
  assert.deepEqual(r.config.docker, {
    socketPath: '/var/run/docker.sock',
    sluiceLabels: true,
    godoxy: { enabled: true, bind: '0.0.0.0' },
    reconnect: { minMs: 250, maxMs: 30_000 },
  });
  const none = parseConfig('routes: {}\n');
  assert.ok(none.ok);
  assert.equal(none.config.docker, undefined, 'no section, no discovery');
});

test('docker: every key, and the top-level acl kept for label routes', () => {
  const r = parseConfig(
    [
      'acl: { allow: [10.0.0.0/8] }',
      'docker:',
      '  socket: unix:///run/podman/podman.sock',
      '  sluiceLabels: false',
      '  godoxy: { enabled: false, bind: "::" }',
      '  reconnect: { min: 1s, max: 1m }',
      '',
    ].join('\n'),
  );
  assert.ok(r.ok);
  assert.deepEqual(r.config.docker, {
    socketPath: '/run/podman/podman.sock',
    sluiceLabels: false,
    godoxy: { enabled: false, bind: '::' },
    reconnect: { minMs: 1000, maxMs: 60_000 },
  });
  assert.deepEqual(r.config.acl?.allow, ['10.0.0.0/8']);
});

test('docker: problems with their key path and line', () => {
  const r = parseConfig(
    [
      'docker:',
      '  socket: /var/run/docker.sock',
      '  godoxy: { bind: localhost }',
      '  reconnect: { min: 10s, max: 1s }',
      '  engine: podman',
      '',
    ].join('\n'),
  );
  assert.ok(!r.ok);
  assert.deepEqual(r.issues.map(formatIssue), [
    'docker.socket (line 2): expected unix:///path/to/engine.sock; got "/var/run/docker.sock"',
    'docker.godoxy.bind (line 3): expected an IP address; got "localhost"',
    'docker.reconnect.max (line 4): must not be below reconnect.min',
    'docker.engine (line 5): unknown key "engine"',
  ]);
  const backoff = parseConfig('docker: { reconnect: { min: 10s, max: 1s } }\n');
  assert.ok(!backoff.ok);
  assert.deepEqual(backoff.issues.map(formatIssue), ['docker.reconnect.max (line 1): must not be below reconnect.min']);
});

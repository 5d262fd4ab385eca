import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RouteConfig } from '../../src/config/types.js';
import { mergeRoutes } from '../../src/discovery/merge.js';
import { config } from '../helpers/node.js';

const file = config(`
routes:
  dns: { listen: "udp://0.0.0.0:53", upstream: "127.0.0.1:5353" }
  ssh: { listen: "tcp://127.0.0.1:2222", upstream: "127.0.0.1:22" }
  any: { listen: "udp://0.0.0.0:0", upstream: "127.0.0.1:9" }
`).routes;

function discovered(name: string, listen: string, container = 'c1'): RouteConfig {
  const [transport, rest] = listen.split('://') as ['tcp' | 'udp', string];
  const i = rest.lastIndexOf(':');
  return {
    ...file[0]!,
    name,
    listen: { transport, host: rest.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(rest.slice(i + 1)) },
    origin: { kind: 'container', container, containerId: `${container}-${'0'.repeat(20)}`, labels: 'sluice' },
  };
}

test('the config file wins a route name', () => {
  const m = mergeRoutes(file, [discovered('dns', 'udp://0.0.0.0:5300')]);
  assert.deepEqual(m.routes.map((r) => r.name), ['dns', 'ssh', 'any']);
  assert.equal(m.skipped.length, 1);
  assert.equal(m.skipped[0]!.message, 'route name "dns" is already used by the config file');
});

test('the config file wins a listen address, exact or overlapping', () => {
  const m = mergeRoutes(file, [
    discovered('dns2', 'udp://0.0.0.0:53'),
    discovered('dns3', 'udp://127.0.0.1:53'),
    discovered('ssh2', 'tcp://0.0.0.0:2222'),
    discovered('ssh6', 'tcp://[::]:2222'),
    discovered('tcp53', 'tcp://0.0.0.0:53'),
    discovered('v6', 'udp://[::1]:53'),
  ]);
  assert.deepEqual(m.routes.map((r) => r.name), ['dns', 'ssh', 'any', 'tcp53', 'v6'], 'another transport or family is free');
  assert.deepEqual(m.skipped.map((s) => s.message), [
    'udp://0.0.0.0:53 is already the listen address of route "dns" (the config file)',
    'udp://127.0.0.1:53 overlaps the listen address of route "dns" (the config file)',
    'tcp://0.0.0.0:2222 overlaps the listen address of route "ssh" (the config file)',
    'tcp://[::]:2222 overlaps the listen address of route "ssh" (the config file)',
  ]);
});

test('between containers the earlier route wins, and the message names the winner', () => {
  const m = mergeRoutes(file, [discovered('web', 'tcp://0.0.0.0:8080', 'old'), discovered('web', 'tcp://0.0.0.0:8081', 'new'), discovered('web2', 'tcp://0.0.0.0:8080', 'new')]);
  assert.deepEqual(m.routes.map((r) => `${r.name}@${r.origin?.container ?? 'file'}`), ['dns@file', 'ssh@file', 'any@file', 'web@old']);
  assert.deepEqual(m.skipped.map((s) => s.message), [
    'route name "web" is already used by container old (old-00000000)',
    'tcp://0.0.0.0:8080 is already the listen address of route "web" (container old (old-00000000))',
  ]);
});

test('port 0 never conflicts; the inputs are not changed', () => {
  const before = JSON.stringify(file);
  const m = mergeRoutes(file, [discovered('a', 'udp://0.0.0.0:0'), discovered('b', 'udp://0.0.0.0:0')]);
  assert.equal(m.routes.length, 5);
  assert.equal(m.skipped.length, 0);
  assert.equal(JSON.stringify(file), before);
});

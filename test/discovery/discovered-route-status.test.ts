import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RouteConfig } from '../../src/config/types.js';
import { discoveredRouteView, DiscoveryLog, problemOf, routeKey } from '../../src/discovery/discovered-route-status.js';
import { containerCandidates, formatProblem } from '../../src/discovery/problems.js';
import { container } from './support/fixtures.js';
import { recordingLog } from './support/harness.js';

const docker = { sluiceLabels: true, godoxy: { enabled: true, bind: '0.0.0.0' } };
const noFile = { acl: undefined, geoip: undefined };

function labelRoute(name: string, id: string): RouteConfig {
  const c = container({ id, name: `box-${name}`, labels: { [`sluice.routes.${name}.listen`]: 'udp://127.0.0.1:5353', [`sluice.routes.${name}.upstream`]: '127.0.0.1:53' } });
  const r = containerCandidates(c, docker, noFile).routes[0];
  assert.ok(r, 'the labels make a route');
  return r;
}

const ID_A = 'a1'.repeat(32);
const ID_B = 'b2'.repeat(32);

test('a route key tells the same name from two containers apart', () => {
  assert.equal(routeKey(labelRoute('dns', ID_A)), `${ID_A}/dns`);
  assert.notEqual(routeKey(labelRoute('dns', ID_A)), routeKey(labelRoute('dns', ID_B)));
});

test('the admin view and a problem name the route and its container', () => {
  const r = labelRoute('dns', ID_A);
  assert.deepEqual(discoveredRouteView(r), { name: 'dns', listen: 'udp://127.0.0.1:5353', upstream: '127.0.0.1:53', container: 'box-dns', containerId: ID_A, labels: 'sluice' });
  assert.deepEqual(problemOf(r, 'bind', 'in use'), { kind: 'bind', container: 'box-dns', containerId: ID_A, route: 'dns', message: 'in use' });
});

test('the log reports routes added and removed, and each problem once while it lasts', () => {
  const { log, lines } = recordingLog();
  const dl = new DiscoveryLog(log);
  const a = labelRoute('dns', ID_A);
  const b = labelRoute('ntp', ID_B);
  const problem = problemOf(b, 'bind', 'in use');
  const none = new Map<string, RouteConfig>();
  dl.report(none, new Map([[routeKey(a), a]]), [problem]);
  dl.report(new Map([[routeKey(a), a]]), new Map([[routeKey(a), a]]), [problem]);
  dl.report(new Map([[routeKey(a), a]]), none, []);
  dl.report(none, none, [problem]);
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg, l.fields.route]),
    [
      ['info', 'route from container labels added', 'dns'],
      ['error', formatProblem(problem), 'ntp'],
      ['info', 'route from container labels removed (its sessions drain)', 'dns'],
      ['error', formatProblem(problem), 'ntp'],
    ],
  );
  assert.deepEqual(lines[0]!.fields, { route: 'dns', listen: 'udp://127.0.0.1:5353', upstream: '127.0.0.1:53', container: 'box-dns', containerId: ID_A.slice(0, 12), labels: 'sluice' });
});

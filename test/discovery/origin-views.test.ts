import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteSet } from '../../src/root/route-set.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { systemClock } from '../../src/core/clock.js';
import { DirectStreamDialer } from '../../src/upstream/direct/tcp-dialer.js';
import { DirectDatagramDialer } from '../../src/upstream/direct/udp-dialer.js';
import { accessLogSink } from '../../src/observe/access-log.js';
import { routeView, sessionsView } from '../../src/admin/views.js';
import { formatStatus } from '../../src/cli/status.js';
import type { RouteOrigin, SluiceConfig } from '../../src/config/types.js';
import { config } from '../helpers/node.js';
import { udpClient, udpEcho, waitFor } from '../helpers/net.js';

test('a route from container labels shows its origin in the access log, the admin views and sluice status', async (t) => {
  const echo = await udpEcho(t);
  const base = config(`
routes:
  dns:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    udp: { idleTimeout: 1s }
  plain:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
`);
  const origin: RouteOrigin = { kind: 'container', container: 'dns-echo', containerId: '3f2a1c9b0e12aabbccdd', labels: 'sluice' };
  const cfg: SluiceConfig = { ...base, routes: [{ ...base.routes[0]!, origin }, base.routes[1]!] };
  const events = new EventStream();
  const lines: string[] = [];
  events.subscribe(accessLogSink({ write: (l) => void lines.push(l), close: async () => {} }, systemClock));
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const node = await RouteSet.start(cfg, { clock: systemClock, events, streamDialer: new DirectStreamDialer(), datagramDialer: new DirectDatagramDialer() });
  t.after(() => node.destroy());

  const c = await udpClient(t);
  c.send(node.route('dns')!.local.port, 'q');
  assert.equal((await c.next()).toString(), 'q');
  await waitFor(() => lines.length === 1, 'start line');
  const start = JSON.parse(lines[0]!) as { origin?: unknown };
  assert.deepEqual(start.origin, { container: 'dns-echo', containerId: '3f2a1c9b0e12aabbccdd', labels: 'sluice' });

  const views = node.routes().map((r) => routeView(r));
  assert.deepEqual(views.find((v) => v.name === 'dns')!.origin, origin);
  assert.equal(views.find((v) => v.name === 'plain')!.origin, undefined);
  const sessions = sessionsView(node.routes(), Date.now());
  const text = formatStatus(views, sessions);
  const header = text.split('\n')[0]!;
  assert.match(header, /^ROUTE\s+PROTO\s+LISTEN\s+BOUND\s+UPSTREAM\s+ACTIVE\s+ORIGIN$/);
  assert.match(text, /\ndns\s+udp\s+.*\s+1\s+container dns-echo \(3f2a1c9b0e12\)\n/);
  assert.match(text, /\nplain\s+udp\s+.*\s+0\s+config\n/);
  await waitFor(() => lines.length === 2, 'end line after the idle timeout', 5000);
  const end = JSON.parse(lines[1]!) as { event: string; origin?: unknown };
  assert.equal(end.event, 'end');
  assert.deepEqual(end.origin, start.origin);
  assert.ok(seen.some((e) => e.type === 'session-ended' && e.flow.origin === origin));
});

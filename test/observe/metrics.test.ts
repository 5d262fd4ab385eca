import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, register as globalRegistry } from 'prom-client';
import { createMetrics, type ActiveCount } from '../../src/observe/metrics.js';
import type { LiveCounters } from '../../src/observe/live-flows.js';
import { counters, ended, flow, started, T0, upstream } from './events-fixture.js';
import { family, parseExposition, sample } from './prom-text.js';

test('sessions started, ended and active: exact exposition, no client addresses in it', async () => {
  const registry = new Registry();
  const m = createMetrics(registry);
  const a = flow(1);
  m.sink(started(a));
  m.sink(started(flow(2)));
  m.sink(started(flow(3, 'ssh', 'tcp')));
  m.sink(ended(a, counters(100, 200, 2, 3), T0 + 5000));

  const text = await registry.metrics();
  assert.equal(
    family(text, 'sluice_sessions_started_total'),
    [
      '# HELP sluice_sessions_started_total Sessions and connections whose upstream dial succeeded.',
      '# TYPE sluice_sessions_started_total counter',
      'sluice_sessions_started_total{route="dns",proto="udp"} 2',
      'sluice_sessions_started_total{route="ssh",proto="tcp"} 1',
    ].join('\n'),
  );
  assert.equal(
    family(text, 'sluice_sessions_ended_total'),
    [
      '# HELP sluice_sessions_ended_total Sessions and connections that ended, by end reason.',
      '# TYPE sluice_sessions_ended_total counter',
      'sluice_sessions_ended_total{route="dns",proto="udp",reason="idle-timeout"} 1',
    ].join('\n'),
  );
  assert.equal(
    family(text, 'sluice_sessions_active'),
    [
      '# HELP sluice_sessions_active Sessions (UDP) and connections (TCP) open right now.',
      '# TYPE sluice_sessions_active gauge',
      'sluice_sessions_active{route="dns",proto="udp"} 1',
      'sluice_sessions_active{route="ssh",proto="tcp"} 1',
    ].join('\n'),
  );
  assert.equal(
    family(text, 'sluice_bytes_total'),
    [
      '# HELP sluice_bytes_total Payload bytes relayed, by direction; live flows are counted at each scrape.',
      '# TYPE sluice_bytes_total counter',
      'sluice_bytes_total{route="dns",proto="udp",direction="from_client"} 100',
      'sluice_bytes_total{route="dns",proto="udp",direction="to_client"} 200',
    ].join('\n'),
  );
  const samples = parseExposition(text);
  assert.equal(samples.get('sluice_packets_total{direction="from_client",proto="udp",route="dns"}'), 2);
  assert.equal(samples.get('sluice_packets_total{direction="to_client",proto="udp",route="dns"}'), 3);
  assert.ok(!text.includes('198.51.100.7') && !text.includes(upstream.address), 'addresses never become labels');
  assert.ok(!text.includes('process_cpu'), 'process metrics are off by default');
});

test('the active gauge never goes negative when a sink joins after sessions began', async () => {
  const registry = new Registry();
  const m = createMetrics(registry);
  m.sink(ended(flow(1), counters(1, 1), T0 + 1));
  assert.equal(await sample(registry, 'sluice_sessions_active', { route: 'dns', proto: 'udp' }), undefined);
  m.sink(started(flow(2)));
  assert.equal(await sample(registry, 'sluice_sessions_active', { route: 'dns', proto: 'udp' }), 1);
});

test('long-lived flows are counted at each scrape, and exactly once in total', async () => {
  const registry = new Registry();
  let live: LiveCounters[] = [];
  const m = createMetrics(registry, { liveCounters: () => live });
  const a = flow(1);
  const b = flow(2, 'game');
  const bytes = (route: string, direction: string) => sample(registry, 'sluice_bytes_total', { route, proto: 'udp', direction });
  const packets = (route: string, direction: string) => sample(registry, 'sluice_packets_total', { route, proto: 'udp', direction });
  m.sink(started(a));
  m.sink(started(b));

  live = [{ ...a, ...counters(1000, 50, 10, 1) }, { ...b, ...counters(7, 0, 1, 0) }];
  assert.equal(await bytes('dns', 'from_client'), 1000);
  assert.equal(await bytes('dns', 'to_client'), 50);
  assert.equal(await packets('dns', 'from_client'), 10);
  assert.equal(await bytes('game', 'from_client'), 7);
  assert.equal(await bytes('game', 'to_client'), undefined, 'no series for traffic that did not happen');

  live = [{ ...a, ...counters(1500, 80, 15, 2) }, { ...b, ...counters(7, 0, 1, 0) }];
  assert.equal(await bytes('dns', 'from_client'), 1500);
  assert.equal(await packets('dns', 'to_client'), 2);

  // Flow a ends with more traffic than the last scrape saw: only the rest is added.
  live = [{ ...b, ...counters(9, 4, 2, 1) }];
  m.sink(ended(a, counters(1600, 90, 16, 3), T0 + 120_000));
  assert.equal(await bytes('dns', 'from_client'), 1600);
  assert.equal(await bytes('dns', 'to_client'), 90);
  assert.equal(await packets('dns', 'from_client'), 16);
  assert.equal(await packets('dns', 'to_client'), 3);
  assert.equal(await bytes('game', 'to_client'), 4);

  // The same scrape polls once, even though two metric families ask.
  let polls = 0;
  const r2 = new Registry();
  createMetrics(r2, { liveCounters: () => (polls++, []) });
  await r2.metrics();
  assert.equal(polls, 1);
  await r2.metrics();
  assert.equal(polls, 2);
});

test('a flow that ends before any scrape is counted from its end event alone', async () => {
  const registry = new Registry();
  const m = createMetrics(registry, { liveCounters: () => [] });
  m.sink(started(flow(1, 'ssh', 'tcp')));
  m.sink(ended(flow(1, 'ssh', 'tcp'), counters(5000, 70_000), T0 + 3000, T0, 'client-closed'));
  assert.equal(await sample(registry, 'sluice_bytes_total', { route: 'ssh', proto: 'tcp', direction: 'from_client' }), 5000);
  assert.equal(await sample(registry, 'sluice_bytes_total', { route: 'ssh', proto: 'tcp', direction: 'to_client' }), 70_000);
  assert.equal(await sample(registry, 'sluice_packets_total', { route: 'ssh', proto: 'tcp', direction: 'to_client' }), undefined, 'TCP has no packet counts');
});

test('activeSessions, when given, is the gauge: summed per route and proto, gone with the route', async () => {
  const registry = new Registry();
  let routes: ActiveCount[] = [
    { route: 'dns', proto: 'udp', active: 4 },
    { route: 'dns', proto: 'tcp', active: 1 },
    { route: 'old', proto: 'udp', active: 2 },
    { route: 'old', proto: 'udp', active: 1 }, // a draining runtime beside its replacement
  ];
  const m = createMetrics(registry, { activeSessions: () => routes });
  m.sink(started(flow(1))); // ignored for the gauge: the routes are authoritative
  let samples = parseExposition(await registry.metrics());
  assert.equal(samples.get('sluice_sessions_active{proto="udp",route="dns"}'), 4);
  assert.equal(samples.get('sluice_sessions_active{proto="tcp",route="dns"}'), 1);
  assert.equal(samples.get('sluice_sessions_active{proto="udp",route="old"}'), 3);
  routes = [{ route: 'dns', proto: 'udp', active: 0 }];
  samples = parseExposition(await registry.metrics());
  assert.equal(samples.get('sluice_sessions_active{proto="udp",route="dns"}'), 0);
  assert.equal(samples.get('sluice_sessions_active{proto="udp",route="old"}'), undefined);
});

test('rejections by reason, observe-only denials apart, datagram drops', async () => {
  const registry = new Registry();
  const m = createMetrics(registry);
  const client = { address: '203.0.113.9', port: 5000, family: 4 as const };
  for (let i = 0; i < 3; i++) m.sink({ type: 'session-rejected', at: T0, route: 'dns', proto: 'udp', client, reason: 'limit-source-rate' });
  m.sink({ type: 'session-rejected', at: T0, route: 'dns', proto: 'udp', client, reason: 'acl-country', detail: 'XX' });
  m.sink({ type: 'session-rejected', at: T0, route: 'dns', proto: 'udp', client, reason: 'acl-cidr', observeOnly: true });
  m.sink({ type: 'datagrams-dropped', at: T0, route: 'dns', reason: 'too-big', count: 12 });
  m.sink({ type: 'datagrams-dropped', at: T0, route: 'dns', reason: 'too-big', count: 3 });
  m.sink({ type: 'datagrams-dropped', at: T0, route: 'dns', reason: 'send-error', count: 0 });
  const text = await registry.metrics();
  assert.equal(
    family(text, 'sluice_sessions_rejected_total').split('\n').slice(2).join('\n'),
    [
      'sluice_sessions_rejected_total{route="dns",proto="udp",reason="limit-source-rate"} 3',
      'sluice_sessions_rejected_total{route="dns",proto="udp",reason="acl-country"} 1',
    ].join('\n'),
  );
  const s = parseExposition(text);
  assert.equal(s.get('sluice_sessions_would_reject_total{proto="udp",reason="acl-cidr",route="dns"}'), 1);
  assert.equal(s.get('sluice_datagrams_dropped_total{reason="too-big",route="dns"}'), 15);
  assert.equal(s.get('sluice_datagrams_dropped_total{reason="send-error",route="dns"}'), undefined);
  assert.ok(!text.includes('203.0.113.9'));
});

test('dial latency histogram in seconds and dial errors by code', async () => {
  const registry = new Registry();
  const m = createMetrics(registry);
  m.sink({ type: 'dial-ok', at: T0, flow: flow(1), latencyMs: 3 });
  m.sink({ type: 'dial-ok', at: T0, flow: flow(2), latencyMs: 0.2 });
  m.sink({ type: 'dial-ok', at: T0, flow: flow(5), latencyMs: Number.NaN }); // skipped, and the sink stays usable
  m.sink({ type: 'dial-error', at: T0, flow: flow(3), upstream: '10.0.0.2:53', code: 'SLUICE_ERR_DIAL_TIMEOUT', message: 'timed out', latencyMs: 5000 });
  m.sink({ type: 'dial-error', at: T0, flow: flow(4), upstream: '10.0.0.2:53', code: 'connect ECONNREFUSED 10.0.0.2:53', message: 'refused', latencyMs: 1 });
  const s = parseExposition(await registry.metrics());
  const ok = (le: string) => s.get(`sluice_dial_duration_seconds_bucket{le="${le}",proto="udp",result="ok",route="dns"}`);
  assert.equal(ok('0.0005'), 1);
  assert.equal(ok('0.0025'), 1);
  assert.equal(ok('0.005'), 2);
  assert.equal(ok('+Inf'), 2);
  assert.equal(s.get('sluice_dial_duration_seconds_count{proto="udp",result="ok",route="dns"}'), 2);
  assert.ok(Math.abs(s.get('sluice_dial_duration_seconds_sum{proto="udp",result="ok",route="dns"}')! - 0.0032) < 1e-9);
  assert.equal(s.get('sluice_dial_duration_seconds_bucket{le="2.5",proto="udp",result="error",route="dns"}'), 1);
  assert.equal(s.get('sluice_dial_duration_seconds_bucket{le="5",proto="udp",result="error",route="dns"}'), 2);
  assert.equal(s.get('sluice_dial_errors_total{code="SLUICE_ERR_DIAL_TIMEOUT",proto="udp",route="dns"}'), 1);
  assert.equal(s.get('sluice_dial_errors_total{code="other",proto="udp",route="dns"}'), 1, 'free text never becomes a label');
});

test('config reloads, route up/down and record-log drops', async () => {
  const registry = new Registry();
  const m = createMetrics(registry);
  let s = parseExposition(await registry.metrics());
  assert.equal(s.get('sluice_config_reloads_total{result="ok"}'), 0);
  assert.equal(s.get('sluice_config_reloads_total{result="rejected"}'), 0);

  m.sink({ type: 'config-reloaded', at: T0, added: ['b'], removed: [], changed: [], rebuilt: [] });
  m.sink({ type: 'config-rejected', at: T0, problems: ['routes.b.listen: bad'] });
  m.sink({ type: 'config-rejected', at: T0, problems: ['x'] });
  m.sink({ type: 'route-up', at: T0, route: 'a', listen: 'udp://127.0.0.1:0', address: { address: '127.0.0.1', port: 5353, family: 4 } });
  m.sink({ type: 'route-up', at: T0, route: 'b', listen: 'tcp://127.0.0.1:0', address: { address: '127.0.0.1', port: 2222, family: 4 } });
  m.sink({ type: 'route-down', at: T0, route: 'a', listen: 'udp://127.0.0.1:0', address: { address: '127.0.0.1', port: 5000, family: 4 } });

  let dropped = 0;
  const unwatch = m.watchRecordLog('flow', () => dropped);
  s = parseExposition(await registry.metrics());
  assert.equal(s.get('sluice_config_reloads_total{result="ok"}'), 1);
  assert.equal(s.get('sluice_config_reloads_total{result="rejected"}'), 2);
  assert.equal(s.get('sluice_route_up{route="a"}'), undefined);
  assert.equal(s.get('sluice_route_up{route="b"}'), 1);
  assert.equal(s.get('sluice_records_dropped_total{log="flow"}'), 0);
  dropped = 40;
  assert.equal(await sample(registry, 'sluice_records_dropped_total', { log: 'flow' }), 40);
  dropped = 41;
  assert.equal(await sample(registry, 'sluice_records_dropped_total', { log: 'flow' }), 41);
  unwatch();
  dropped = 1000;
  assert.equal(await sample(registry, 'sluice_records_dropped_total', { log: 'flow' }), 41);
  // A new writer under the same log name starts from 0; the counter keeps adding.
  let again = 0;
  m.watchRecordLog('flow', () => again);
  again = 5;
  assert.equal(await sample(registry, 'sluice_records_dropped_total', { log: 'flow' }), 46);
});

test('metrics go to the given registry only; process metrics on request', async () => {
  const registry = new Registry();
  createMetrics(registry, { processMetrics: true });
  assert.equal(globalRegistry.getSingleMetric('sluice_sessions_active'), undefined);
  const text = await registry.metrics();
  assert.match(text, /^process_cpu_user_seconds_total \d/m);
  assert.match(text, /^# TYPE sluice_sessions_active gauge$/m);
  // A second instance in the same process (another node, another test) does not collide.
  createMetrics(new Registry());
});

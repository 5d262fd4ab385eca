import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { systemClock } from '../../src/core/clock.js';
import { EventStream, notPerSession, type SluiceEvent } from '../../src/observe/events.js';
import { RouteSet } from '../../src/root/route-set.js';
import { DirectStreamDialer } from '../../src/upstream/direct/tcp-dialer.js';
import { DirectDatagramDialer } from '../../src/upstream/direct/udp-dialer.js';
import { config } from '../helpers/node.js';
import { readAll, tcpServer, waitFor } from '../helpers/net.js';
import { streamDatapathCases } from '../datapath/stream-datapaths.js';

// Sinks say which event types they read (EventStream.subscribe's interest), so a session's
// per-session events (session-started, dial-ok, session-ended) are not built when no sink would
// read them: no access log, flow records, metrics, admin views or ban rule.

test('event interest: wants() follows the subscribed sinks, an interest asked again each time', () => {
  const events = new EventStream();
  assert.equal(events.wants('session-started'), false, 'no sink');
  let rules = 0;
  const offLog = events.subscribe(() => {}, notPerSession);
  const offBans = events.subscribe(() => {}, (type) => rules > 0 && type === 'session-started');
  assert.equal(events.wants('session-started'), false);
  assert.equal(events.wants('session-ended'), false);
  assert.equal(events.wants('route-up'), true, 'the process log reads route-up');
  rules = 1; // a reload configured a ban rule
  assert.equal(events.wants('session-started'), true);
  assert.equal(events.wants('session-ended'), false);
  const offAll = events.subscribe(() => {});
  assert.equal(events.wants('session-ended'), true, 'a sink without an interest reads everything');
  offAll();
  offAll(); // idempotent
  assert.equal(events.wants('session-ended'), false);
  offBans();
  assert.equal(events.wants('session-started'), false);
  offLog();
  assert.equal(events.wants('route-up'), false);
  // Delivery is unchanged: every event reaches every sink, whatever the interests.
  const got: string[] = [];
  events.subscribe((e) => got.push(e.type), notPerSession);
  events.emit({ type: 'config-reloaded', at: 0, added: [], removed: [], changed: [], rebuilt: [] } as unknown as SluiceEvent);
  assert.deepEqual(got, ['config-reloaded']);
});

for (const c of streamDatapathCases()) {
  test(`event interest: a TCP route builds its per-session events only while a sink reads them [${c.kind}]`, { skip: c.skip ?? false }, async (t) => {
    if (!c.datapath) throw new Error('CI=true: the native stream datapath must load (node native/build.mjs)');
    const up = await tcpServer(t); // echo
    const built: string[] = [];
    // Counts what publishers build: emit is only called for an event that was built.
    const events = new (class extends EventStream {
      override emit(e: SluiceEvent): void {
        built.push(e.type);
        super.emit(e);
      }
    })();
    events.subscribe(() => {}, notPerSession); // the process log's sinks
    const node = await RouteSet.start(
      config(`
routes:
  echo:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
`),
      { clock: systemClock, events, streamDialer: new DirectStreamDialer(), datagramDialer: new DirectDatagramDialer(), streamDatapath: c.datapath },
    );
    t.after(() => node.destroy());
    const port = node.route('echo')!.local.port;
    const once = async () => {
      const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      s.end('ping');
      assert.equal((await readAll(s)).toString(), 'ping');
      s.destroy();
      await waitFor(() => node.route('echo')!.active === 0, 'the connection ended');
    };
    await once();
    assert.deepEqual(built.filter((x) => x.startsWith('session') || x.startsWith('dial')), [], 'nobody reads them: none built');
    // An access log (a sink without an interest) comes: the same connection has its three events.
    const records: SluiceEvent[] = [];
    events.subscribe((e) => records.push(e));
    await once();
    await waitFor(() => records.some((e) => e.type === 'session-ended'), 'session-ended');
    assert.deepEqual(
      records.map((e) => e.type),
      ['session-started', 'dial-ok', 'session-ended'],
    );
    const ended = records[2] as Extract<SluiceEvent, { type: 'session-ended' }>;
    assert.deepEqual([ended.reason, ended.counters.bytesFromClient, ended.counters.bytesToClient], ['client-closed', 4, 4]);
  });
}

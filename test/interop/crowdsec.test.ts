import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startNode as startRunningNode } from '../../src/root/start-node.js';
import { systemClock } from '../../src/core/clock.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { config } from '../helpers/node.js';
import { readAll, tcpServer, udpEcho, waitFor } from '../helpers/net.js';
import { tempDir } from '../helpers/peers.js';
import { haveCrowdsec, startRealLapi, type RealLapi } from '../admission/crowdsec/real-lapi.js';
import { CrowdsecBouncer } from '../../src/admission/crowdsec/crowdsec-bouncer.js';
import { normaliseLapiUrl } from '../../src/config/crowdsec-settings.js';

/**
 * The bouncer against a real CrowdSec Local API (Debian crowdsec 1.4.6), through whole Apps on
 * real sockets: bans added and removed with cscli reach UDP and TCP routes at the next pull.
 */

type Rejected = Extract<SluiceEvent, { type: 'session-rejected' }>;

async function startApp(t: TestContext, yaml: string) {
  let logs = '';
  const logDestination = new Writable({
    write(chunk, _enc, cb) {
      logs += String(chunk);
      cb();
    },
  });
  const app = await startRunningNode(config(yaml), { clock: systemClock, logDestination });
  t.after(() => app.stop());
  const seen: SluiceEvent[] = [];
  app.events.subscribe((e) => seen.push(e));
  const rejected = () => seen.filter((e): e is Rejected => e.type === 'session-rejected');
  return { app, logs: () => logs, rejected, port: (route: string) => app.routes.route(route)!.local.port };
}

/** A UDP client bound to `host` (any 127.0.0.0/8 address is on lo). */
async function udpFrom(t: TestContext, host: string) {
  const s = dgram.createSocket('udp4');
  s.bind(0, host);
  await once(s, 'listening');
  t.after(() => s.close());
  const inbox: string[] = [];
  s.on('message', (m) => inbox.push(m.toString()));
  return { inbox, send: (port: number, data: string) => s.send(data, port, '127.0.0.1') };
}

/** One TCP exchange from `host`: what came back before the relay closed the connection. */
async function tcpFrom(host: string, port: number, data: string): Promise<string> {
  const s = net.connect({ host: '127.0.0.1', port, localAddress: host, allowHalfOpen: true });
  s.on('error', () => {});
  await once(s, 'connect');
  s.end(data);
  return (await readAll(s)).toString();
}

function crowdsecYaml(lapi: RealLapi, key: string, opts: { mode?: string; onUnavailable?: string; timeout?: string }, rest: string): string {
  return `
crowdsec:
  url: ${lapi.url}
  apiKey: ${key}
  interval: 200ms
  timeout: ${opts.timeout ?? '1s'}
  mode: ${opts.mode ?? 'enforce'}
  onUnavailable: ${opts.onUnavailable ?? 'allow'}
lifecycle: { drainTimeout: 100ms }
${rest}`;
}

test('crowdsec LAPI: bans block UDP and TCP through opted-in routes; deletion, observe mode and outages', async (t) => {
  if (!haveCrowdsec(t)) return;
  const lapi = await startRealLapi(t);
  const echo = await udpEcho(t);
  const up = await tcpServer(t);

  await t.test('a manual ban refuses one address on UDP and TCP (dual-stack listeners), another passes; deleting it lets it in', async (t) => {
    const key = await lapi.addBouncer('sluice-enforce');
    await lapi.cscli('decisions', 'add', '--ip', '127.0.0.2', '--duration', '10m', '--reason', 'sluice-interop-ban');
    await lapi.cscli('decisions', 'add', '--range', '127.0.1.0/24', '--duration', '10m', '--reason', 'sluice-range-ban');
    const dir = await tempDir(t, 'sluice-cs-log-');
    const accessLog = join(dir, 'access.log');
    const a = await startApp(
      t,
      crowdsecYaml(
        lapi,
        key,
        {},
        `
accessLog: { output: ${accessLog} }
routes:
  game:
    listen: udp://[::]:0
    upstream: 127.0.0.1:${echo.port}
    acl: { crowdsec: true }
  web:
    listen: tcp://[::]:0
    upstream: 127.0.0.1:${up.port}
    acl: { crowdsec: true }
  open:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
`,
      ),
    );
    assert.equal(a.app.crowdsec?.current?.state, 'ready', 'the first pull finished before the routes came up');

    const banned = await udpFrom(t, '127.0.0.2');
    banned.send(a.port('game'), 'let me in');
    assert.equal(await tcpFrom('127.0.0.2', a.port('web'), 'tcp in?'), '', 'the TCP connection is closed unanswered');
    await waitFor(() => a.rejected().length === 2, 'two refusals');
    for (const r of a.rejected()) {
      assert.equal(r.reason, 'crowdsec');
      assert.equal(r.detail, 'sluice-interop-ban (ban on Ip 127.0.0.2, origin cscli)');
      assert.equal(r.client.address, '127.0.0.2', 'the IPv4-mapped address from the [::] listener is matched and reported as IPv4');
      assert.equal(r.observeOnly, false);
    }
    assert.deepEqual(a.rejected().map((r) => r.proto).sort(), ['tcp', 'udp']);
    assert.equal(echo.received, 0, 'nothing reached the UDP upstream');
    assert.equal(up.sockets.size, 0, 'no upstream TCP connection');

    const ranged = await udpFrom(t, '127.0.1.9');
    ranged.send(a.port('game'), 'x');
    await waitFor(() => a.rejected().length === 3, 'the range ban');
    assert.equal(a.rejected()[2]!.detail, 'sluice-range-ban (ban on Range 127.0.1.0/24, origin cscli)');

    const good = await udpFrom(t, '127.0.0.1');
    good.send(a.port('game'), 'hello');
    await waitFor(() => good.inbox.length === 1, 'echo for 127.0.0.1');
    assert.equal(await tcpFrom('127.0.0.1', a.port('web'), 'tcp ok'), 'tcp ok');
    banned.send(a.port('open'), 'no opt-in');
    await waitFor(() => banned.inbox.length === 1, 'a route without acl.crowdsec ignores the ban');

    await lapi.cscli('decisions', 'delete', '--ip', '127.0.0.2');
    const retry = setInterval(() => banned.send(a.port('game'), 'now?'), 50);
    try {
      await waitFor(() => banned.inbox.length >= 2, 'the deletion reaches the relay at the next pull (interval 200ms)', 3_000);
    } finally {
      clearInterval(retry);
    }
    assert.equal(await tcpFrom('127.0.0.2', a.port('web'), 'back'), 'back');

    await a.app.stop();
    const lines = (await readFile(accessLog, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const rejects = lines.filter((l) => l.event === 'reject');
    assert.ok(rejects.length >= 3);
    assert.deepEqual(
      { reason: rejects[0]!.reason, detail: rejects[0]!.detail, clientAddr: rejects[0]!.clientAddr },
      { reason: 'crowdsec', detail: 'sluice-interop-ban (ban on Ip 127.0.0.2, origin cscli)', clientAddr: '127.0.0.2' },
    );
    await lapi.cscli('decisions', 'delete', '--range', '127.0.1.0/24');
  });

  await t.test('observe mode admits a banned client and records the would-be refusal', async (t) => {
    const key = await lapi.addBouncer('sluice-observe');
    await lapi.cscli('decisions', 'add', '--ip', '127.0.0.3', '--duration', '10m', '--reason', 'sluice-observed');
    const a = await startApp(
      t,
      crowdsecYaml(
        lapi,
        key,
        { mode: 'observe' },
        `
accessLog: { output: 'off' }
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    acl: { crowdsec: true }
`,
      ),
    );
    const c = await udpFrom(t, '127.0.0.3');
    c.send(a.port('game'), 'watched');
    await waitFor(() => c.inbox.length === 1, 'served');
    assert.equal(c.inbox[0], 'watched');
    const r = a.rejected();
    assert.equal(r.length, 1);
    assert.equal(r[0]!.reason, 'crowdsec');
    assert.equal(r[0]!.observeOnly, true);
    assert.equal(r[0]!.detail, 'sluice-observed (ban on Ip 127.0.0.3, origin cscli)');
    await lapi.cscli('decisions', 'delete', '--ip', '127.0.0.3');
  });

  await t.test('a wrong bouncer key is an auth failure the real LAPI reports as 403', async (t) => {
    const b = new CrowdsecBouncer(
      { url: normaliseLapiUrl(lapi.url), apiKey: 'not-a-registered-key', mode: 'enforce', onUnavailable: 'deny', intervalMs: 10_000, timeoutMs: 2_000 },
      { clock: systemClock },
    );
    t.after(() => b.close());
    await b.firstPull;
    assert.equal(b.state, 'unavailable');
    assert.equal(b.counters.pullsFailed.auth, 1);
    assert.match(b.stats().lastError!.message, /refused the bouncer key \(HTTP 403/);
    assert.equal(b.check('127.0.0.1')?.detail, 'no decision list loaded: auth; onUnavailable is deny');
  });

  await t.test('LAPI stopped: onUnavailable deny applies once the list is stale; traffic resumes when it returns', async (t) => {
    const key = await lapi.addBouncer('sluice-outage');
    const a = await startApp(
      t,
      crowdsecYaml(
        lapi,
        key,
        { onUnavailable: 'deny', timeout: '500ms' },
        `
accessLog: { output: 'off' }
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    acl: { crowdsec: true }
`,
      ),
    );
    const state = () => a.app.crowdsec?.current?.state;
    const before = await udpFrom(t, '127.0.0.1');
    before.send(a.port('game'), 'up');
    await waitFor(() => before.inbox.length === 1, 'served while the LAPI is up');

    await lapi.stop();
    await waitFor(() => state() === 'degraded', 'the first failed pull', 3_000);
    const during = await udpFrom(t, '127.0.0.1');
    during.send(a.port('game'), 'degraded');
    await waitFor(() => during.inbox.length === 1, 'one or two failures: the list is still used');
    await waitFor(() => state() === 'stale', 'stale after three failed pulls', 5_000);
    const refused = await udpFrom(t, '127.0.0.1');
    refused.send(a.port('game'), 'stale');
    await waitFor(() => a.rejected().length === 1, 'refused while stale');
    assert.match(a.rejected()[0]!.detail!, /^decision list stale: \d+ pulls in a row failed \(last: unreachable\); onUnavailable is deny$/);
    assert.match(a.logs(), /crowdsec decisions stale; onUnavailable deny applies/);

    await lapi.start();
    await waitFor(() => state() === 'ready', 'ready again after the LAPI returns', 5_000);
    const after = await udpFrom(t, '127.0.0.1');
    after.send(a.port('game'), 'back');
    await waitFor(() => after.inbox.length === 1, 'served again');
    assert.match(a.logs(), /"state":"ready","previous":"stale"/);
    const c = a.app.crowdsec!.counters;
    assert.ok(c.pullsFailed.unreachable >= 3, `unreachable pulls counted (${c.pullsFailed.unreachable})`);
  });
});

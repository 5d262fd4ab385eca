import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { App } from '../../../src/app.js';
import { systemClock } from '../../../src/core/clock.js';
import type { SluiceEvent } from '../../../src/observe/events.js';
import { config } from '../../helpers/node.js';
import { udpEcho, waitFor } from '../../helpers/net.js';
import { decision, fakeLapi } from './fake-lapi.js';

/** An App from a config file (so reload re-reads it), logs captured; stopped in t.after. */
async function appFromFile(t: TestContext, yaml: string) {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-cs-app-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'sluice.yaml');
  await writeFile(file, yaml);
  let logs = '';
  const logDestination = new Writable({
    write(chunk, _enc, cb) {
      logs += String(chunk);
      cb();
    },
  });
  const app = await App.start(config(yaml), file, { clock: systemClock, logDestination });
  t.after(() => app.stop());
  const seen: SluiceEvent[] = [];
  app.events.subscribe((e) => seen.push(e));
  return {
    app,
    seen,
    logs: () => logs,
    rewrite: async (next: string) => {
      await writeFile(file, next);
      const summary = await app.reload();
      assert.ok(summary, `reload refused: ${JSON.stringify(seen.filter((e) => e.type === 'config-rejected'))}`);
    },
  };
}

async function udpFrom(t: TestContext, host: string) {
  const s = dgram.createSocket('udp4');
  s.bind(0, host);
  await once(s, 'listening');
  t.after(() => s.close());
  const inbox: string[] = [];
  s.on('message', (m) => inbox.push(m.toString()));
  return { inbox, send: (port: number, data: string) => s.send(data, port, '127.0.0.1') };
}

const yaml = (url: string, crowdsecExtra: string, route: string, echoPort: number) => `
${url ? `crowdsec:\n  url: ${url}\n  apiKey: good-key\n  interval: 100ms\n${crowdsecExtra}` : ''}
accessLog: { output: 'off' }
lifecycle: { drainTimeout: 100ms }
admin: { listen: "127.0.0.1:0" }
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echoPort}
${route}
`;

test('app: the puller starts with the app, follows reloads (policy in place, new LAPI, removal) and stops with it', async (t) => {
  const echo = await udpEcho(t);
  const a = await fakeLapi(t);
  const b = await fakeLapi(t);
  a.answer(() => ({ body: { new: [decision('Ip', '127.0.0.2', { scenario: 'from-a' })] } }));
  b.answer(() => ({ body: { new: [decision('Ip', '127.0.0.2', { scenario: 'from-b' })] } }));
  const optIn = '    acl: { crowdsec: true }';
  const s = await appFromFile(t, yaml(a.url, '', optIn, echo.port));
  const port = () => s.app.node.route('game')!.local.port;
  const first = s.app.crowdsec!.current!;
  assert.equal(first.state, 'ready', 'App.start waited for the first pull');
  assert.match(s.logs(), /"msg":"crowdsec decisions loaded"/);
  assert.doesNotMatch(s.logs(), /good-key/, 'the key is never logged');

  const c = await udpFrom(t, '127.0.0.2');
  c.send(port(), 'x');
  await waitFor(() => s.seen.some((e) => e.type === 'session-rejected'), 'refused');

  // Only the policy changes: the same bouncer and list, now observe-only.
  await s.rewrite(yaml(a.url, '  mode: observe\n', optIn, echo.port));
  assert.equal(s.app.crowdsec!.current, first);
  c.send(port(), 'observed');
  await waitFor(() => c.inbox.length === 1, 'admitted in observe mode');
  const observed = s.seen.filter((e): e is Extract<SluiceEvent, { type: 'session-rejected' }> => e.type === 'session-rejected');
  assert.deepEqual(observed.map((e) => [e.detail, e.observeOnly]), [
    ['from-a (ban on Ip 127.0.0.2, origin cscli)', false],
    ['from-a (ban on Ip 127.0.0.2, origin cscli)', true],
  ]);

  // Another LAPI: a new bouncer, loaded before the swap; the old one stops pulling.
  await s.rewrite(yaml(b.url, '', optIn, echo.port));
  const second = s.app.crowdsec!.current!;
  assert.notEqual(second, first);
  assert.equal(first.state, 'closed');
  assert.equal(second.state, 'ready');
  assert.equal(b.seen[0]!.startup, 'true');
  const fresh = await udpFrom(t, '127.0.0.2');
  fresh.send(port(), 'y');
  await waitFor(() => s.seen.filter((e) => e.type === 'session-rejected').length === 3, 'refused by the new list');
  const last = s.seen.filter((e) => e.type === 'session-rejected').at(-1) as Extract<SluiceEvent, { type: 'session-rejected' }>;
  assert.equal(last.detail, 'from-b (ban on Ip 127.0.0.2, origin cscli)');

  // Metrics on the admin registry.
  const text = await s.app.recording.registry!.metrics();
  assert.match(text, /sluice_crowdsec_pulls_total\{result="ok"\} \d+/);
  assert.match(text, /sluice_crowdsec_banned\{scope="ip"\} 1/);
  assert.match(text, /sluice_crowdsec_up 1/);
  assert.match(text, /sluice_sessions_rejected_total\{[^}]*reason="crowdsec"[^}]*\} 2/);

  // crowdsec removed: no bouncer, no pulls; the route admits.
  const aCount = a.seen.length;
  await s.rewrite(yaml('', '', '', echo.port));
  assert.equal(s.app.crowdsec!.current, undefined);
  assert.equal(second.state, 'closed');
  // Its metric families go with it: `sluice_crowdsec_up 0` would fire a "CrowdSec down" alert.
  assert.doesNotMatch(await s.app.recording.registry!.metrics(), /sluice_crowdsec_/);
  const bCount = b.seen.length;
  const again = await udpFrom(t, '127.0.0.2');
  again.send(port(), 'z');
  await waitFor(() => again.inbox.length === 1, 'admitted without crowdsec');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(a.seen.length, aCount);
  assert.equal(b.seen.length, bCount);
});

test('app: a route without acl.crowdsec never consults the bouncer; stop() ends the pulls', async (t) => {
  const echo = await udpEcho(t);
  const lapi = await fakeLapi(t);
  lapi.answer(() => ({ body: { new: [decision('Ip', '127.0.0.2')] } }));
  const s = await appFromFile(t, yaml(lapi.url, '  onUnavailable: deny\n', '', echo.port));
  const c = await udpFrom(t, '127.0.0.2');
  c.send(s.app.node.route('game')!.local.port, 'hi');
  await waitFor(() => c.inbox.length === 1, 'served');
  assert.equal(s.seen.filter((e) => e.type === 'session-rejected').length, 0);
  await s.app.stop();
  const n = lapi.seen.length;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(lapi.seen.length, n);
});

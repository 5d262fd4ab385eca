import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startNode as startRunningNode } from '../../../src/root/start-node.js';
import { systemClock } from '../../../src/core/clock.js';
import type { SluiceEvent } from '../../../src/observe/events.js';
import { config } from '../../helpers/node.js';
import { freePort, tcpServer, udpEcho, waitFor } from '../../helpers/net.js';
import { certificateFingerprint } from '../../../src/gateway/certificate.js';
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
  const app = await startRunningNode(config(yaml), { configPath: file, clock: systemClock, logDestination });
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
  const port = () => s.app.routes.route('game')!.local.port;
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
  const text = await s.app.ops.registry!.metrics();
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
  assert.doesNotMatch(await s.app.ops.registry!.metrics(), /sluice_crowdsec_/);
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
  c.send(s.app.routes.route('game')!.local.port, 'hi');
  await waitFor(() => c.inbox.length === 1, 'served');
  assert.equal(s.seen.filter((e) => e.type === 'session-rejected').length, 0);
  await s.app.stop();
  const n = lapi.seen.length;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(lapi.seen.length, n);
});

/** A TCP echo upstream and a client bound to `host`, its connection live through the route. */
async function tcpFrom(t: TestContext, host: string, port: number) {
  const s = net.connect({ host: '127.0.0.1', port, localAddress: host, allowHalfOpen: true });
  s.on('error', () => {});
  t.after(() => s.destroy());
  await once(s, 'connect');
  s.write('ping');
  assert.equal(String((await once(s, 'data'))[0]), 'ping');
  return s;
}

const liveYaml = (url: string, mode: string, udpUp: number, tcpUp: number) =>
  yaml(url, `  mode: ${mode}\n`, `    udp: { idleTimeout: 60s }
    acl: { crowdsec: true }
  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${tcpUp}
    acl: { crowdsec: true }`, udpUp);

async function liveClients(t: TestContext, mode: 'enforce' | 'observe') {
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const lapi = await fakeLapi(t);
  const s = await appFromFile(t, liveYaml(lapi.url, mode, echo.port, up.port));
  const udp = await udpFrom(t, '127.0.0.2');
  udp.send(s.app.routes.route('game')!.local.port, 'hello');
  await waitFor(() => udp.inbox.length === 1, 'UDP session live');
  const tcp = await tcpFrom(t, '127.0.0.2', s.app.routes.route('ssh')!.local.port);
  return { s, lapi, udp, tcp, echo };
}

test('app: a CrowdSec ban pulled while sessions are live ends the UDP session and TCP connection with crowdsec, counted and logged', async (t) => {
  const { s, lapi, tcp } = await liveClients(t, 'enforce');
  const ended = () => s.seen.filter((e): e is Extract<SluiceEvent, { type: 'session-ended' }> => e.type === 'session-ended');
  const tcpEnd = once(tcp, 'end');
  const bannedAt = Date.now();
  lapi.answer(() => ({ body: { new: [decision('Ip', '127.0.0.2', { scenario: 'live-ban' })] } }));
  await waitFor(() => ended().length === 2, 'both sessions ended');
  await tcpEnd;
  const ms = Date.now() - bannedAt;
  t.diagnostic(`ban in the LAPI to both sessions ended: ${ms} ms (pull interval 100 ms)`);
  // The ban reaches Sluice with the next pull (interval 100ms); the sessions end on that pull.
  assert.ok(ms < 1000, `sessions ended ${ms} ms after the LAPI had the ban`);
  assert.deepEqual(ended().map((e) => [e.flow.proto, e.reason, e.detail]).sort(), [
    ['tcp', 'crowdsec', 'live-ban (ban on Ip 127.0.0.2, origin cscli)'],
    ['udp', 'crowdsec', 'live-ban (ban on Ip 127.0.0.2, origin cscli)'],
  ]);
  assert.equal(s.app.routes.route('game')!.active, 0);
  assert.equal(s.app.routes.route('ssh')!.active, 0);
  const text = await s.app.ops.registry!.metrics();
  assert.match(text, /sluice_sessions_ended_total\{route="game",proto="udp",reason="crowdsec"\} 1/);
  assert.match(text, /sluice_sessions_ended_total\{route="ssh",proto="tcp",reason="crowdsec"\} 1/);
  assert.match(text, /sluice_verdict_rechecks_total\{cause="crowdsec"\} [1-9]/);
  await waitFor(() => /"msg":"verdicts changed; live sessions judged again"/.test(s.logs()), 'ops log line');
  assert.match(s.logs(), /"cause":"crowdsec","checked":2,"ended":2,"wouldEnd":0/);
});

test('app: in crowdsec observe mode a ban on a live client records would-end once and the sessions go on', async (t) => {
  const { s, lapi, udp, tcp } = await liveClients(t, 'observe');
  const would = () => s.seen.filter((e): e is Extract<SluiceEvent, { type: 'session-would-end' }> => e.type === 'session-would-end');
  lapi.answer(() => ({ body: { new: [decision('Ip', '127.0.0.2', { scenario: 'watch-only' })] } }));
  await waitFor(() => would().length === 2, 'two would-end records');
  // Later pulls bring the ban again: the same sessions are not recorded twice.
  const passes = () => s.seen.filter((e) => e.type === 'verdicts-reapplied').length;
  const now = passes();
  await waitFor(() => passes() >= now + 2, 'two more passes');
  assert.equal(would().length, 2);
  assert.deepEqual(would().map((e) => [e.flow.proto, e.reason]).sort(), [
    ['tcp', 'crowdsec'],
    ['udp', 'crowdsec'],
  ]);
  udp.send(s.app.routes.route('game')!.local.port, 'still');
  await waitFor(() => udp.inbox.includes('still'), 'the UDP session still relays');
  tcp.write('still');
  assert.equal(String((await once(tcp, 'data'))[0]), 'still');
  assert.equal(s.seen.filter((e) => e.type === 'session-ended').length, 0);
  const text = await s.app.ops.registry!.metrics();
  assert.match(text, /sluice_sessions_would_end_total\{route="game",proto="udp",reason="crowdsec"\} 1/);
  assert.match(text, /sluice_sessions_would_end_total\{route="ssh",proto="tcp",reason="crowdsec"\} 1/);
});

test("app: a CrowdSec ban ends a live connection on a gateway's public listener too (exposures are judged with the routes)", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-cs-expose-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cert = join(dir, 'gw-cert.pem');
  const key = join(dir, 'gw-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=gw', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const fingerprint = certificateFingerprint(await readFile(cert));
  const service = await tcpServer(t);
  const lapi = await fakeLapi(t);
  const gwPort = await freePort();
  const token = 'expose-token-0123456789abcdef';
  const s = await appFromFile(
    t,
    `
crowdsec: { url: ${lapi.url}, apiKey: good-key, interval: 100ms }
accessLog: { output: 'off' }
admin: { listen: "127.0.0.1:0" }
gateway:
  listen: 127.0.0.1:${gwPort}
  stateDir: ${dir}
  tls: { cert: ${cert}, key: ${key} }
  agents: { home: { token: "${token}" } }
  ports: 41000-41999
  services: { acl: { crowdsec: true } }
agent:
  name: home
  gateway: 127.0.0.1:${gwPort}
  token: "${token}"
  fingerprint: ${fingerprint}
  reconnect: { initial: 50ms, max: 500ms }
  expose:
    echo: { local: 127.0.0.1:${service.port}, remote: tcp://127.0.0.1:0 }
`,
  );
  const agent = s.app.exposure!.agent!;
  await waitFor(() => agent.state === 'connected' && agent.services().every((x) => x.bound !== undefined), 'service published');
  const publicPort = agent.services()[0]!.bound!.port;
  const tcp = await tcpFrom(t, '127.0.0.2', publicPort);
  const ended = () => s.seen.filter((e): e is Extract<SluiceEvent, { type: 'session-ended' }> => e.type === 'session-ended');
  const end = once(tcp, 'end');
  lapi.answer(() => ({ body: { new: [decision('Ip', '127.0.0.2', { scenario: 'expose-ban' })] } }));
  await waitFor(() => ended().some((e) => e.flow.route === 'home/echo'), 'the public connection ended');
  await end;
  assert.deepEqual(ended().filter((e) => e.flow.route === 'home/echo').map((e) => [e.reason, e.detail]), [['crowdsec', 'expose-ban (ban on Ip 127.0.0.2, origin cscli)']]);
});

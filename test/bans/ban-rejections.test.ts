import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/net.js';
import { startApp, tempDir } from '../admin/app-helper.js';
import { connectToGateway, GatewayConnectError } from '../../src/agent/gateway-connection.js';
import { systemClock } from '../../src/core/clock.js';
import { parseConfig } from '../../src/config/load.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { clientSockets, echoUpstream, ended } from './helpers.js';

// What `rejectionsPer` counts besides refused sessions (docs/bans.md): failed agent
// authentications on a gateway, and PROXY headers from senders that are not trusted.

const HOME = 'home-token-0123456789abcdef';
const OFFICE = 'office-token-0123456789abcdef';

test('bans: three wrong agent tokens from 127.0.0.2 within 10 s ban it; its next connection is closed before TLS; a correct agent from 127.0.0.1 is unaffected', async (t) => {
  const dir = await tempDir(t, 'sluice-bans-');
  const a = await startApp(
    t,
    `
gateway:
  listen: 127.0.0.1:0
  stateDir: ${dir}
  handshakeTimeout: 1s
  bans: [knock]
  agents:
    home: { token: "${HOME}" }
    office: { token: "${OFFICE}" }
  ports: 1024-65535
bans:
  stateDir: ${dir}
  rules:
    knock: { when: { rejectionsPer: { count: 3, window: 10s } }, ban: 1h }
`,
  );
  const gateway = a.app.exposure!.gateway!;
  const seen: SluiceEvent[] = [];
  a.app.events.subscribe((e) => seen.push(e));
  const abort = new AbortController();
  t.after(() => abort.abort());
  const connect = (name: string, token: string, from: string) =>
    connectToGateway({
      host: '127.0.0.1',
      port: gateway.tcpAddress.port,
      name,
      token,
      fingerprint: gateway.fingerprint.replace(/^sha256:/, ''),
      ca: undefined,
      serverName: undefined,
      datagramKeyId: 7,
      resumeKeyId: 0,
      streamWindow: 65536,
      timeoutMs: 3000,
      clock: systemClock,
      signal: abort.signal,
      localAddress: from,
    });
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => 'connected',
      (err: unknown) => (err instanceof GatewayConnectError ? err.failure : String(err)),
    );

  const good = await connect('home', HOME, '127.0.0.1');
  t.after(() => good.channel.destroy({ sent: 'shutting-down' }));
  let goodEnded = false;
  void good.channel.ended.then(() => (goodEnded = true));

  for (let i = 0; i < 3; i++) assert.equal(await failure(connect('home', 'wrong-token-0123456789abcdef', '127.0.0.2')), 'wrong-token');
  await waitFor(() => a.app.bans!.store.get('127.0.0.2') !== undefined, 'the third failure bans 127.0.0.2');
  const failed = seen.filter((e): e is Extract<SluiceEvent, { type: 'auth-failed' }> => e.type === 'auth-failed');
  assert.deepEqual(failed.map((e) => [e.client.address, e.agent, e.failure]), Array(3).fill(['127.0.0.2', 'home', 'wrong-token']));
  assert.deepEqual(a.app.bans!.store.list().map((b) => [b.target, b.source, b.reason]), [['127.0.0.2', 'rule:knock', '3 rejections within 10s']]);

  // Banned: held unread before TLS (no handshake, no token check), closed at the handshake timeout.
  const fourth = await failure(connect('home', HOME, '127.0.0.2'));
  assert.ok(['timeout', 'closed', 'tls-error'].includes(fourth), `the banned source never gets to authenticate (${fourth})`);
  assert.equal(gateway.counters.preAuthBanned, 1);
  assert.equal(gateway.counters.authRefused['wrong-token'], 3, 'the fourth attempt reached no token check');

  // 127.0.0.1: its agent stays connected, and a new one authenticates.
  const other = await connect('office', OFFICE, '127.0.0.1');
  other.channel.destroy({ sent: 'shutting-down' });
  assert.equal(goodEnded, false);
  assert.equal(gateway.agent('home')?.state, 'attached');
});

test('config: gateway.bans names rules of bans.rules; an unknown name is an error at its key', () => {
  const yaml = (names: string) =>
    `gateway:\n  listen: 127.0.0.1:0\n  bans: ${names}\n  agents:\n    home: { token: "${HOME}" }\n  ports: 1024-65535\nbans:\n  rules:\n    knock: { when: { rejectionsPer: { count: 3, window: 10s } }, ban: 1h }\n`;
  const ok = parseConfig(yaml('[knock]'));
  assert.ok(ok.ok);
  assert.deepEqual(ok.config.gateway!.bans, ['knock']);
  const bad = parseConfig(yaml('[nope]'));
  assert.ok(!bad.ok);
  assert.deepEqual(bad.issues.map((i) => [i.path, i.line]), [['gateway.bans.0', 3]]);
  assert.match(bad.issues[0]!.message, /no ban rule "nope"/);
});

test('bans: PROXY headers from a sender that is not trusted count as rejections; the third bans it and its next connection is refused as banned', async (t) => {
  const sockets = clientSockets(t);
  const up = await echoUpstream(t);
  const dir = await tempDir(t, 'sluice-bans-');
  const a = await startApp(
    t,
    `
bans:
  stateDir: ${dir}
  rules:
    knock: { when: { rejectionsPer: { count: 3, window: 10s } }, ban: 1h }
  default: [knock]
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [127.0.0.9/32] }
`,
    { clock: new ManualClock() },
  );
  const seen: SluiceEvent[] = [];
  a.app.events.subscribe((e) => seen.push(e));
  const rejections = () => seen.flatMap((e) => (e.type === 'session-rejected' ? [`${e.client.address} ${e.reason}`] : []));
  const spoof = async () => {
    const before = rejections().length;
    const s = net.connect({ host: '127.0.0.1', port: a.port('web'), localAddress: '127.0.0.2', allowHalfOpen: true });
    s.on('error', () => {});
    sockets.push(s);
    await once(s, 'connect');
    s.write('PROXY TCP4 198.51.100.7 127.0.0.1 4000 80\r\nGET / HTTP/1.0\r\n\r\n');
    await ended(s);
    await waitFor(() => rejections().length > before, 'a refusal');
  };
  for (let i = 0; i < 3; i++) await spoof();
  await waitFor(() => a.app.bans!.store.get('127.0.0.2') !== undefined, 'banned after the third header');
  await spoof();
  assert.deepEqual(rejections(), [
    '127.0.0.2 proxy-header-untrusted',
    '127.0.0.2 proxy-header-untrusted',
    '127.0.0.2 proxy-header-untrusted',
    '127.0.0.2 banned',
  ]);
  assert.equal(seen.filter((e) => e.type === 'session-started').length, 0, 'nothing reached the upstream');
});

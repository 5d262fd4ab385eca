import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import net from 'node:net';
import { readAll, udpEcho } from '../helpers/net.js';
import { readTicks, request, startApp, tempDir } from './app-helper.js';
import { AdminAuth, COOKIE_NAME, readCookie } from '../../src/admin/auth.js';
import { checkRequest, hostAllowed } from '../../src/admin/request-guard.js';
import { LoginThrottle, sourceKey } from '../../src/admin/login-throttle.js';
import { ManualClock } from '../helpers/manual-clock.js';

const TOKEN = 'correct-horse-battery-staple-7f3a9c';

const yaml = (udpUp: number, admin: string) => `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${udpUp}
accessLog: { output: off }
admin: ${admin}
lifecycle: { drainTimeout: 1s }
`;

test('admin auth: with a token, API, metrics, stream and dashboard need it (Bearer or the login cookie)', async (t) => {
  const echo = await udpEcho(t);
  const s = await startApp(t, yaml(echo.port, `{ listen: 127.0.0.1:0, token: ${TOKEN} }`));
  const base = s.admin();
  const host = base.replace('http://', '');
  const bearer = { authorization: `Bearer ${TOKEN}` };

  const paths = ['/api/routes', '/api/sessions', '/api/flows', '/api/denials', '/api/sources', '/api/health', '/api/stream', '/metrics', '/dashboard.js'];
  for (const [i, path] of paths.entries()) {
    const none = await request(base + path);
    assert.equal(none.status, 401, `${path} without a token`);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="sluice-admin"');
    // Wrong tokens from a source of their own per path, under the per-source allowance (the throttle has its own test).
    const localAddress = `127.0.0.${10 + i}`;
    const wrong = await request(base + path, { headers: { authorization: `Bearer ${TOKEN}x` }, localAddress });
    assert.equal(wrong.status, 401, `${path} with a wrong token`);
    const prefix = await request(base + path, { headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}` }, localAddress });
    assert.equal(prefix.status, 401, `${path} with a prefix of the token`);
  }
  for (const path of ['/api/routes', '/api/health', '/metrics', '/dashboard.js']) {
    assert.equal((await request(base + path, { headers: bearer })).status, 200, `${path} with the token`);
  }
  await readTicks(`${base}/api/stream`, () => true, bearer);

  // The dashboard: redirected to the login page, which needs no token (nor does its stylesheet).
  const page = await request(`${base}/`);
  assert.equal(page.status, 303);
  assert.equal(page.headers.location, '/login');
  const login = await request(`${base}/login`);
  assert.equal(login.status, 200);
  assert.match(login.body, /<form method="post" action="\/login"/);
  assert.equal((await request(`${base}/dashboard.css`)).status, 200);

  // Logging in: a wrong token gets the form again (401) and no cookie.
  const form = { 'content-type': 'application/x-www-form-urlencoded', origin: base };
  const bad = await request(`${base}/login`, { method: 'POST', headers: form, body: 'token=guess' });
  assert.equal(bad.status, 401);
  assert.equal(bad.headers['set-cookie'], undefined);
  assert.match(bad.body, /not right/);
  const good = await request(`${base}/login`, { method: 'POST', headers: form, body: `token=${encodeURIComponent(TOKEN)}` });
  assert.equal(good.status, 303);
  assert.equal(good.headers.location, '/');
  const setCookie = good.headers['set-cookie']![0]!;
  assert.match(setCookie, new RegExp(`^${COOKIE_NAME}=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Strict; Max-Age=\\d+$`));
  assert.ok(!setCookie.includes(TOKEN), 'the cookie does not carry the token itself');
  const cookie = setCookie.split(';')[0]!;
  const dash = await request(`${base}/`, { headers: { cookie } });
  assert.equal(dash.status, 200);
  assert.match(dash.body, /<script src="\/dashboard.js"/);
  assert.equal((await request(`${base}/api/sessions`, { headers: { cookie } })).status, 200);
  await readTicks(`${base}/api/stream`, () => true, { cookie });
  assert.equal((await request(`${base}/api/sessions`, { headers: { cookie: `${COOKIE_NAME}=forged` } })).status, 401);

  // JSON login (scripts), and logout clears the cookie.
  const json = await request(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
  assert.equal(json.status, 204);
  const out = await request(`${base}/logout`, { method: 'POST', headers: { origin: base, cookie } });
  assert.equal(out.status, 303);
  assert.match(out.headers['set-cookie']![0]!, /Max-Age=0/);

  assert.ok(!s.logs().includes(TOKEN), 'the token never appears in the log');
  assert.ok(!s.logs().includes(cookie.split('=')[1]!), 'nor the cookie value');
  assert.match(s.logs(), /admin login failed/);
  assert.ok(host.length > 0);
});

test('admin guard: Host and Origin are checked before the token (DNS rebinding, cross-site)', async (t) => {
  const echo = await udpEcho(t);
  const s = await startApp(t, yaml(echo.port, `{ listen: 127.0.0.1:0, token: ${TOKEN} }`));
  const base = s.admin();
  const port = new URL(base).port;
  const bearer = { authorization: `Bearer ${TOKEN}` };
  const get = (headers: Record<string, string>) => request(`${base}/api/health`, { headers: { ...bearer, ...headers } });

  for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) assert.equal((await get({ host: h })).status, 200, h);
  for (const h of [`evil.example:${port}`, `127.0.0.1.nip.io:${port}`, `127.0.0.1:${Number(port) + 1}`, '127.0.0.1', `10.0.0.1:${port}`]) {
    const r = await get({ host: h });
    assert.equal(r.status, 403, `Host ${h}`);
    assert.equal(JSON.parse(r.body).reason, 'bad-host');
  }
  // No Host at all (HTTP/1.0 allows it).
  const raw = net.connect({ host: '127.0.0.1', port: Number(port) });
  raw.end('GET /api/health HTTP/1.0\r\n\r\n');
  const answer = (await readAll(raw)).toString();
  assert.match(answer, /^HTTP\/1\.1 403 /);
  // A rebinding attacker without the token gets 403, not 401: nothing is revealed about the token.
  assert.equal((await request(`${base}/api/health`, { headers: { host: `attacker.example:${port}` } })).status, 403);

  assert.equal((await get({ origin: base })).status, 200, 'same origin');
  for (const o of ['http://evil.example', `http://localhost:${Number(port) + 1}`, `https://127.0.0.1:${port}`, 'null']) {
    const r = await get({ origin: o });
    assert.equal(r.status, 403, `Origin ${o}`);
    assert.equal(JSON.parse(r.body).reason, 'bad-origin');
  }
  assert.equal((await get({ 'sec-fetch-site': 'cross-site' })).status, 403);
  assert.equal((await get({ 'sec-fetch-site': 'same-site' })).status, 403, 'another port on localhost is same-site');
  assert.equal((await get({ 'sec-fetch-site': 'same-origin' })).status, 200);
  assert.equal((await get({ 'sec-fetch-site': 'none' })).status, 200);
  // A cross-site login POST (CSRF) is refused before the body is read.
  const csrf = await request(`${base}/login`, { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` });
  assert.equal(csrf.status, 403);
  assert.equal(csrf.headers['set-cookie'], undefined);
});

test('admin auth: wrong tokens from one source make it wait before any comparison, Bearer and login form alike; another source is unaffected', async (t) => {
  const clock = new ManualClock(Date.now());
  const echo = await udpEcho(t);
  const s = await startApp(t, yaml(echo.port, `{ listen: 127.0.0.1:0, token: ${TOKEN} }`), { clock });
  const base = s.admin();
  const health = (token: string, localAddress = '127.0.0.1') => request(`${base}/api/health`, { headers: { authorization: `Bearer ${token}` }, localAddress });
  const form = (token: string) =>
    request(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(token)}` });

  // Five wrong guesses are free; the sixth starts the backoff (1 s).
  for (let i = 0; i < 6; i++) assert.equal((await health(`guess-${i}`)).status, 401, `guess ${i}`);
  const refused = await health(TOKEN);
  assert.equal(refused.status, 429, 'the right token is refused too while the source waits');
  assert.equal(refused.headers['retry-after'], '1');
  const viaForm = await form(TOKEN);
  assert.equal(viaForm.status, 429, 'the login form is throttled the same way');
  assert.equal(viaForm.headers['set-cookie'], undefined);
  assert.equal((await health(TOKEN, '127.0.0.2')).status, 200, 'another source is unaffected');

  clock.advance(1000);
  assert.equal((await form('guess-7')).status, 401, 'after the wait, a guess is compared again');
  const longer = await health(TOKEN);
  assert.equal(longer.status, 429, 'the next failure doubled the wait');
  assert.equal(longer.headers['retry-after'], '2');
  clock.advance(1999);
  assert.equal((await health(TOKEN)).status, 429);
  clock.advance(1);
  assert.equal((await health(TOKEN)).status, 200, 'the right token once the wait has passed');
  // The success cleared the source: five free guesses again.
  for (let i = 0; i < 5; i++) assert.equal((await health(`again-${i}`)).status, 401);
  assert.equal((await health(TOKEN)).status, 200);

  // A wrong cookie is a wrong credential too.
  const cookieReq = () => request(`${base}/api/health`, { headers: { cookie: `${COOKIE_NAME}=forged` } });
  for (let i = 0; i < 6; i++) assert.equal((await cookieReq()).status, 401);
  assert.equal((await cookieReq()).status, 429);
  assert.equal((await request(`${base}/api/health`)).status, 401, 'a request with no credential is not throttled, only unauthorised');

  const text = await s.app.ops.registry!.metrics();
  assert.match(text, /sluice_admin_auth_throttled_total 5\b/);
  assert.match(text, /sluice_admin_auth_failures_total 18\b/);
});

test('admin auth: a token change on reload logs the dashboard out', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'sluice.yaml');
  const echo = await udpEcho(t);
  const s = await startApp(t, yaml(echo.port, `{ listen: 127.0.0.1:0, token: ${TOKEN} }`), { file });
  const base = s.admin();
  const json = await request(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
  assert.equal(json.status, 204);
  const cookie = json.headers['set-cookie']![0]!.split(';')[0]!;
  assert.equal((await request(`${base}/api/health`, { headers: { cookie } })).status, 200);

  const other = 'another-token-0123456789abcdef';
  await writeFile(file, yaml(echo.port, `{ listen: ${base.replace('http://', '')}, token: ${other} }`));
  await s.app.reload();
  assert.equal(s.app.ops.adminAddress?.port, Number(new URL(base).port), 'same listener');
  assert.equal((await request(`${base}/api/health`, { headers: { cookie } })).status, 401, 'old cookie refused');
  assert.equal((await request(`${base}/api/health`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 401);
  assert.equal((await request(`${base}/api/health`, { headers: { authorization: `Bearer ${other}` } })).status, 200);
  assert.ok(!s.logs().includes(TOKEN) && !s.logs().includes(other), 'no token in the log');
});

test('admin without a token (loopback only): no login, API open to this host', async (t) => {
  const echo = await udpEcho(t);
  const s = await startApp(t, yaml(echo.port, '{ listen: 127.0.0.1:0 }'));
  const base = s.admin();
  assert.equal((await request(`${base}/api/health`)).status, 200);
  assert.equal((await request(`${base}/`)).status, 200);
  const login = await request(`${base}/login`);
  assert.equal(login.status, 303, 'nothing to log into');
  assert.equal((await request(`${base}/api/health`, { headers: { host: `evil.example:${new URL(base).port}` } })).status, 403, 'Host still checked');
});

test('request guard and auth units', () => {
  const listen = { host: '127.0.0.1', port: 9090 };
  assert.equal(hostAllowed('127.0.0.1:9090', listen), true);
  assert.equal(hostAllowed('localhost:9090', listen), true);
  assert.equal(hostAllowed('[::1]:9090', listen), true);
  assert.equal(hostAllowed('192.0.2.1:9090', listen), false, 'another IP when bound to one address');
  assert.equal(hostAllowed('192.0.2.1:9090', { host: '0.0.0.0', port: 9090 }), true, 'any IP literal on a wildcard listener');
  assert.equal(hostAllowed('[2001:db8::1]:9090', { host: '::', port: 9090 }), true);
  assert.equal(hostAllowed('admin.example:9090', { host: '0.0.0.0', port: 9090 }), false, 'never a name');
  assert.equal(hostAllowed('127.0.0.1', { host: '127.0.0.1', port: 80 }), true, 'no port means 80');
  assert.equal(hostAllowed('127.0.0.1:9090:1', listen), false);
  assert.equal(checkRequest({}, listen), 'bad-host');
  assert.equal(checkRequest({ host: '127.0.0.1:9090', origin: 'http://127.0.0.1:9090' }, listen), undefined);
  assert.equal(checkRequest({ host: '127.0.0.1:9090', origin: 'http://localhost:9090' }, listen), 'bad-origin', 'origin must match Host exactly');

  const auth = new AdminAuth(TOKEN);
  assert.equal(auth.required, true);
  assert.equal(auth.allows({}), false);
  assert.equal(auth.allows({ authorization: `Bearer ${TOKEN}` }), true);
  assert.equal(auth.allows({ authorization: `bearer   ${TOKEN}` }), true);
  assert.equal(auth.allows({ authorization: `Basic ${TOKEN}` }), false);
  assert.equal(auth.matchesToken(''), false);
  const cookie = auth.loginCookie().split(';')[0]!;
  assert.equal(auth.allows({ cookie: `a=b; ${cookie}; c=d` }), true);
  assert.equal(new AdminAuth('x'.repeat(20)).allows({ cookie }), false, 'cookies are bound to the token');
  assert.equal(new AdminAuth(undefined).allows({}), true);
  assert.equal(readCookie('a=1; b = 2', 'b'), '2');
  assert.equal(readCookie(undefined, 'b'), undefined);
});

test('login throttle units: an IPv6 /64 is one source, IPv4-mapped is IPv4, and memory is bounded', () => {
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64', 'the whole /64 shares one allowance');
  assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey(undefined), '?');
  const clock = new ManualClock();
  const th = new LoginThrottle(clock, { freeFailures: 0, baseMs: 1000, maxMs: 4000, forgetAfterMs: 60_000, maxSources: 3 });
  for (let i = 0; i < 5; i++) th.failed('192.0.2.1');
  assert.equal(th.admit('192.0.2.1'), 4000, 'capped at maxMs');
  for (const a of ['192.0.2.2', '192.0.2.3', '192.0.2.4']) th.failed(a);
  assert.equal(th.admit('192.0.2.1'), 0, 'the source with the oldest failure was forgotten past maxSources');
  assert.equal(th.admit('192.0.2.4'), 1000);
  clock.advance(60_000);
  assert.equal(th.admit('192.0.2.4'), 0);
  th.failed('192.0.2.4');
  assert.equal(th.admit('192.0.2.4'), 1000, 'forgotten after forgetAfterMs: the count started over');
});

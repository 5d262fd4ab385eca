import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import http from 'node:http';
import { udpEcho } from '../helpers/net.js';
import { request, startApp, tempDir } from './app-helper.js';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';
import { certificateFingerprint } from '../../src/gateway/certificate.js';
import { runStatusCommand } from '../../src/cli/status.js';

const TOKEN = 'tls-admin-token-0123456789abcdef';

/** A self-signed certificate for 127.0.0.1 made by the openssl CLI (as an operator would). */
async function certificate(t: TestContext, dir: string) {
  const cert = join(dir, 'admin-cert.pem');
  const key = join(dir, 'admin-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=sluice-admin-test', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const pem = await readFile(cert, 'utf8');
  t.diagnostic(`certificate ${certificateFingerprint(pem)}`);
  return { cert, key, pem };
}

const yaml = (udpUp: number, admin: string, extra = '') => `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${udpUp}
accessLog: { output: off }
admin: ${admin}
lifecycle: { drainTimeout: 1s }
${extra}`;

async function status(args: string[]) {
  let out = '';
  let err = '';
  const code = await runStatusCommand(args, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env: {},
  });
  return { code, out, err };
}

test('admin over TLS: https with the token works, the cookie is Secure, plain http gets no answer', async (t) => {
  const dir = await tempDir(t);
  const c = await certificate(t, dir);
  const echo = await udpEcho(t);
  const s = await startApp(t, yaml(echo.port, `{ listen: 127.0.0.1:0, token: ${TOKEN}, tls: { cert: ${c.cert}, key: ${c.key} } }`));
  const base = s.admin();
  assert.match(base, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(s.app.ops.adminTls, true);

  const health = await request(`${base}/api/health`, { headers: { authorization: `Bearer ${TOKEN}` }, ca: c.pem });
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(health.body).status, 'ok');
  await assert.rejects(request(`${base}/api/health`, { headers: { authorization: `Bearer ${TOKEN}` } }), /self-signed|unable to verify|certificate/i, 'an untrusted certificate is refused by the client');

  const login = await request(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base }, body: `token=${TOKEN}`, ca: c.pem });
  assert.equal(login.status, 303);
  const setCookie = login.headers['set-cookie']![0]!;
  assert.match(setCookie, /; HttpOnly; SameSite=Strict; Secure; Max-Age=\d+$/);
  const cookie = setCookie.split(';')[0]!;
  assert.equal((await request(`${base}/api/sessions`, { headers: { cookie }, ca: c.pem })).status, 200);
  const out = await request(`${base}/logout`, { method: 'POST', headers: { cookie, origin: base }, ca: c.pem });
  assert.match(out.headers['set-cookie']![0]!, /Secure; Max-Age=0/);
  // The guard wants the https origin now.
  const plainOrigin = await request(`${base}/api/health`, { headers: { authorization: `Bearer ${TOKEN}`, origin: base.replace('https:', 'http:') }, ca: c.pem });
  assert.equal(plainOrigin.status, 403);

  // A plain-HTTP request to the TLS port: no HTTP answer, so no token or cookie ever travels in clear.
  const plain = http.request(base.replace('https:', 'http:') + '/api/health', { headers: { authorization: `Bearer ${TOKEN}` }, agent: false });
  plain.end();
  const outcome = await new Promise<string>((resolve) => {
    plain.once('response', () => resolve('response'));
    plain.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  assert.equal(outcome, 'ECONNRESET', 'the TLS listener drops a plain-HTTP client without an HTTP answer');
});

test('sluice status against an https admin listener: --ca, --fingerprint, --config pins the certificate, a wrong pin never sends the token', async (t) => {
  const dir = await tempDir(t);
  const c = await certificate(t, dir);
  const echo = await udpEcho(t);
  const admin = `{ listen: 127.0.0.1:0, token: ${TOKEN}, tls: { cert: ${c.cert}, key: ${c.key} } }`;
  const s = await startApp(t, yaml(echo.port, admin));
  const base = s.admin();
  const fp = certificateFingerprint(c.pem);

  const viaCa = await status(['--admin', base, '--token', TOKEN, '--ca', c.cert]);
  assert.equal(viaCa.code, 0, viaCa.err);
  assert.match(viaCa.out, /game/);
  const viaPin = await status(['--admin', base, '--token', TOKEN, '--fingerprint', fp]);
  assert.equal(viaPin.code, 0, viaPin.err);
  const untrusted = await status(['--admin', base, '--token', TOKEN]);
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.err, /cannot reach the admin API/);
  assert.equal((await status(['--admin', base, '--token', TOKEN, '--insecure'])).code, 0, '--insecure checks nothing');
  const badFlag = await status(['--admin', base, '--fingerprint', 'sha256:abc']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.err, /--fingerprint must be sha256: and 64 hex digits/);

  const failuresBefore = /sluice_admin_auth_failures_total (\d+)/.exec(await s.app.ops.registry!.metrics())![1];
  const wrongPin = await status(['--admin', base, '--token', 'not-the-token-but-would-leak', '--fingerprint', `sha256:${'0'.repeat(64)}`]);
  assert.equal(wrongPin.code, 1);
  assert.match(wrongPin.err, /not the pinned sha256:0{64}/);
  const failuresAfter = /sluice_admin_auth_failures_total (\d+)/.exec(await s.app.ops.registry!.metrics())![1];
  assert.equal(failuresAfter, failuresBefore, 'no request reached the listener');

  // --config: the URL is https and the configured certificate is pinned, with no flag.
  const file = join(dir, 'sluice.yaml');
  await writeFile(file, yaml(echo.port, admin.replace('127.0.0.1:0', base.replace('https://', ''))));
  const viaConfig = await status(['--config', file]);
  assert.equal(viaConfig.code, 0, viaConfig.err);
  assert.match(viaConfig.out, /game/);
});

test('admin.tls: a renewed certificate at the same path is served after a reload, on the same listener', async (t) => {
  const dir = await tempDir(t);
  const c = await certificate(t, dir);
  const echo = await udpEcho(t);
  const file = join(dir, 'sluice.yaml');
  const s = await startApp(t, yaml(echo.port, `{ listen: 127.0.0.1:0, token: ${TOKEN}, tls: { cert: ${c.cert}, key: ${c.key} } }`), { file });
  const base = s.admin();
  const first = certificateFingerprint(c.pem);
  assert.equal((await status(['--admin', base, '--token', TOKEN, '--fingerprint', first])).code, 0);
  const renewed = await certificate(t, dir);
  const second = certificateFingerprint(renewed.pem);
  assert.notEqual(second, first);
  assert.ok(await s.app.reload(), 'reload applied');
  assert.equal(s.admin(), base, 'same listener');
  assert.equal((await status(['--admin', base, '--token', TOKEN, '--fingerprint', second])).code, 0, 'the new certificate is served');
  const old = await status(['--admin', base, '--token', TOKEN, '--fingerprint', first]);
  assert.equal(old.code, 1);
  assert.match(old.err, /not the pinned/);
});

test('admin.tls: gateway serves the gateway certificate on the admin listener', async (t) => {
  const dir = await tempDir(t);
  const echo = await udpEcho(t);
  const gateway = `gateway:\n  listen: 127.0.0.1:0\n  stateDir: ${dir}\n  agents:\n    home: { token: "gateway-token-0123456789abcdef" }\n  ports: 40000-40010\n`;
  const s = await startApp(t, yaml(echo.port, `{ listen: 127.0.0.1:0, token: ${TOKEN}, tls: gateway }`, gateway));
  const gw = s.app.exposure!.gateway!;
  const pem = await readFile(join(dir, 'gateway-cert.pem'), 'utf8');
  assert.equal(certificateFingerprint(pem), gw.fingerprint, 'one certificate for both listeners');
  const r = await status(['--admin', s.admin(), '--token', TOKEN, '--fingerprint', gw.fingerprint]);
  assert.equal(r.code, 0, r.err);
});

test('config: a non-loopback admin listen without TLS is refused with path and line unless allowPlaintext; tls: gateway needs a gateway', () => {
  const problems = (text: string) => {
    const r = parseConfig(text);
    return r.ok ? [] : r.issues.map(formatIssue);
  };
  assert.deepEqual(problems(`routes: {}\nadmin:\n  listen: 0.0.0.0:9090\n  token: ${TOKEN}\n`), [
    'admin.listen (line 3): 0.0.0.0 is not a loopback address: serve the admin listener over TLS (admin.tls: { cert, key } or admin.tls: gateway), or set admin.allowPlaintext: true',
  ]);
  assert.deepEqual(problems(`admin:\n  listen: 0.0.0.0:9090\n  token: ${TOKEN}\n  allowPlaintext: true\n`), []);
  assert.deepEqual(problems(`admin:\n  listen: 0.0.0.0:9090\n  token: ${TOKEN}\n  tls: { cert: /etc/sluice/admin.pem, key: /etc/sluice/admin.key }\n`), []);
  assert.deepEqual(problems('admin:\n  listen: 127.0.0.1:9090\n'), [], 'loopback needs neither');
  assert.deepEqual(problems(`admin:\n  listen: 127.0.0.1:9090\n  tls: gateway\n`), [
    'admin.tls (line 3): is "gateway" but there is no gateway: section whose certificate it could use; give cert and key files instead',
  ]);
  assert.deepEqual(problems(`admin:\n  listen: 127.0.0.1:9090\n  tls: { cert: a.pem }\n`).length, 1);
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { havePeer, startPeer, tempDir } from '../helpers/peers.js';
import { freePort, waitFor } from '../helpers/net.js';
import { startNode } from '../helpers/node.js';

/**
 * Real HTTP/3 through routing by QUIC server name: two caddy sites (each its own certificate and
 * body) behind one Sluice UDP port, loaded by headless Chromium forced to QUIC. Sluice's port has
 * no TCP listener, so a page that loads came over QUIC, through the route of its name.
 */

/** A self-signed certificate for `name`; returns its files and the base64 SHA-256 of its SPKI (Chromium's pin form). */
function certificate(dir: string, name: string): { cert: string; key: string; spki: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`]);
  assert.equal(made.status, 0, String(made.stderr));
  const pub = spawnSync('sh', ['-c', `openssl x509 -in '${cert}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`]);
  assert.equal(pub.status, 0, String(pub.stderr));
  return { cert, key, spki: String(pub.stdout).trim() };
}

/** One caddy serving `body` over HTTP/3 (and h1/h2) for `name` on a free port. */
async function caddySite(t: TestContext, dir: string, name: string, body: string) {
  const { cert, key, spki } = certificate(dir, name);
  const port = await freePort();
  const file = join(dir, `${name}.Caddyfile`);
  await writeFile(file, `{
  admin off
  auto_https disable_redirects
  storage file_system ${join(dir, `${name}-data`)}
  servers {
    protocols h1 h2 h3
  }
}
https://${name}:${port} {
  tls ${cert} ${key}
  respond "${body}"
}
`);
  const child = startPeer(t, 'caddy', ['run', '--config', file, '--adapter', 'caddyfile']);
  await waitFor(() => /server running/.test(child.output()) || child.exitCode !== null, `caddy for ${name} running`, 10_000);
  assert.equal(child.exitCode, null, child.output());
  return { port, spki };
}

/** Loads https://name:port/ in headless Chromium forced to QUIC; resolves with the DOM it printed. */
async function loadOverQuic(t: TestContext, dir: string, name: string, port: number, spki: string): Promise<string> {
  const child = startPeer(t, 'chromium', [
    '--headless=new', '--no-sandbox', '--disable-gpu', `--user-data-dir=${join(dir, `chromium-${name}`)}`,
    '--enable-quic', `--origin-to-force-quic-on=${name}:${port}`, `--host-resolver-rules=MAP ${name} 127.0.0.1`,
    `--ignore-certificate-errors-spki-list=${spki}`, '--dump-dom', `https://${name}:${port}/`,
  ]);
  const bound = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await once(child, 'exit');
  clearTimeout(bound);
  return child.output();
}

test('HTTP/3 by name: caddy sites behind one Sluice UDP port load in Chromium over QUIC, each by its own name, asserted on the body', async (t) => {
  if (!havePeer(t, 'caddy', 'caddy') || !havePeer(t, 'chromium', 'chromium') || !havePeer(t, 'openssl', 'openssl')) return;
  const dir = await tempDir(t, 'sluice-h3-');
  const alpha = await caddySite(t, dir, 'alpha.test', 'hello from alpha');
  const beta = await caddySite(t, dir, 'beta.test', 'hello from beta');
  const n = await startNode(t, `
routes:
  alpha: { listen: "udp://127.0.0.1:0", match: { sni: [alpha.test] }, upstream: "127.0.0.1:${alpha.port}" }
  beta: { listen: "udp://127.0.0.1:0", match: { sni: [beta.test] }, upstream: "127.0.0.1:${beta.port}" }
`);
  const port = n.port('alpha');
  assert.equal(n.port('beta'), port, 'one shared UDP port');

  const pageA = await loadOverQuic(t, dir, 'alpha.test', port, alpha.spki);
  assert.match(pageA, /<pre[^>]*>hello from alpha<\/pre>/, pageA.slice(-400));
  const pageB = await loadOverQuic(t, dir, 'beta.test', port, beta.spki);
  assert.match(pageB, /<pre[^>]*>hello from beta<\/pre>/, pageB.slice(-400));

  // Each name's sessions went through its own route only.
  const started = n.ofType('session-started').map((e) => [e.flow.route, e.upstream.port]);
  assert.ok(started.some(([r, p]) => r === 'alpha' && p === alpha.port) && started.some(([r, p]) => r === 'beta' && p === beta.port), JSON.stringify(started));
  assert.ok(started.every(([r, p]) => (r === 'alpha' ? alpha.port : beta.port) === p), JSON.stringify(started));
  assert.equal(n.ofType('session-rejected').length, 0);
});

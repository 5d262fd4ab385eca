import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { formatStatus } from '../../src/cli/status.js';
import { runSluice } from '../helpers/cli.js';
import { tempDir } from '../helpers/peers.js';

const TOKEN = 'status-test-token-0123456789';

/** The admin address and token come only from each test's flags and env, never from the caller's shell. */
function sluice(t: TestContext, args: string[], env: Record<string, string> = {}) {
  return runSluice(t, args, { SLUICE_ADMIN: '', SLUICE_ADMIN_TOKEN: '', ...env });
}

test('sluice status: routes and a live session from a running `sluice run`, as tables', async (t) => {
  const dir = await tempDir(t);
  const echo = await udpEcho(t);
  const [adminPort, routePort] = [await freePort(), await freePort('udp')];
  const cfg = join(dir, 'sluice.yaml');
  await writeFile(
    cfg,
    `routes:
  game:
    listen: udp://127.0.0.1:${routePort}
    upstream: 127.0.0.1:${echo.port}
accessLog: { output: off }
admin: { listen: 127.0.0.1:${adminPort}, token: ${TOKEN} }
lifecycle: { drainTimeout: 1s }
`,
  );
  const run = sluice(t, ['run', '--config', cfg]);
  await waitFor(() => run.err().includes('route up'), 'sluice run started', 10_000);

  const c = await udpClient(t);
  c.send(routePort, 'hello status');
  await c.next();

  const st = sluice(t, ['status', '--admin', `127.0.0.1:${adminPort}`], { SLUICE_ADMIN_TOKEN: TOKEN });
  assert.equal(await st.exited, 0, st.err());
  const lines = st.out().split('\n');
  assert.match(lines[0]!, /^ROUTE\s+PROTO\s+LISTEN\s+BOUND\s+UPSTREAM\s+ACTIVE$/);
  assert.match(lines[1]!, new RegExp(`^game\\s+udp\\s+udp://127\\.0\\.0\\.1:${routePort}\\s+127\\.0\\.0\\.1:${routePort}\\s+127\\.0\\.0\\.1:${echo.port}\\s+1$`));
  assert.equal(lines[3], 'SESSIONS: 1');
  assert.match(lines[4]!, /^FLOW\s+ROUTE\s+PROTO\s+CLIENT\s+UPSTREAM\s+STATE\s+AGE\s+BYTES_FROM_CLIENT\s+BYTES_TO_CLIENT\s+PKTS_FROM_CLIENT\s+PKTS_TO_CLIENT$/);
  assert.match(st.out(), /\nUDP DATAPATH: (js|native)\nTCP DATAPATH: (js|native)\n$/, 'the datapaths in use are shown');
  assert.match(lines[5]!, new RegExp(`^1\\s+game\\s+udp\\s+127\\.0\\.0\\.1:${c.port}\\s+127\\.0\\.0\\.1:${echo.port}\\s+open\\s+\\d+s\\s+12\\s+12\\s+1\\s+1$`));

  // --config finds the address and the token; --json prints the API's data.
  const viaConfig = sluice(t, ['status', '--config', cfg, '--json']);
  assert.equal(await viaConfig.exited, 0, viaConfig.err());
  const json = JSON.parse(viaConfig.out()) as { routes: { name: string }[]; total: number; sessions: { clientPort: number }[] };
  assert.deepEqual([json.routes[0]!.name, json.total, json.sessions[0]!.clientPort], ['game', 1, c.port]);

  // Without the token: 401, a clear message, exit 1; the token is not echoed.
  const noToken = sluice(t, ['status', '--admin', `http://127.0.0.1:${adminPort}`]);
  assert.equal(await noToken.exited, 1);
  assert.match(noToken.err(), /needs a valid token \(401\): pass --token or set SLUICE_ADMIN_TOKEN/);
  const wrong = sluice(t, ['status', '--admin', `127.0.0.1:${adminPort}`, '--token', 'wrong-token-wrong-token']);
  assert.equal(await wrong.exited, 1);
  assert.ok(!wrong.err().includes('wrong-token'), 'token not echoed');

  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});

test('sluice status: unreachable admin API and bad usage', async (t) => {
  const port = await freePort();
  const r = sluice(t, ['status', '--admin', `127.0.0.1:${port}`]);
  assert.equal(await r.exited, 1);
  assert.match(r.err(), new RegExp(`^sluice status: cannot reach the admin API at http://127\\.0\\.0\\.1:${port}/: connection refused \\(ECONNREFUSED\\): nothing listens there \\(is \`sluice run\` running with admin\\.listen set\\?\\)\\n$`));
  assert.equal(r.out(), '');
  const env = sluice(t, ['status'], { SLUICE_ADMIN: `127.0.0.1:${port}` });
  assert.equal(await env.exited, 1);
  assert.match(env.err(), new RegExp(`127\\.0\\.0\\.1:${port}`), 'SLUICE_ADMIN is used');

  const bad = sluice(t, ['status', '--frob']);
  assert.equal(await bad.exited, 2);
  assert.match(bad.err(), /unknown flag --frob/);
  const badUrl = sluice(t, ['status', '--admin', 'ftp://x']);
  assert.equal(await badUrl.exited, 2);
  const dir = await tempDir(t);
  const noAdmin = join(dir, 'a.yaml');
  await writeFile(noAdmin, 'routes: {}\n');
  const na = sluice(t, ['status', '--config', noAdmin]);
  assert.equal(await na.exited, 2);
  assert.match(na.err(), /has no admin: section/);
  const invalid = join(dir, 'b.yaml');
  await writeFile(invalid, 'admin: { listen: 0.0.0.0:1 }\n');
  const inv = sluice(t, ['status', '--config', invalid]);
  assert.equal(await inv.exited, 3);
  const help = sluice(t, ['status', '--help']);
  assert.equal(await help.exited, 0);
  assert.match(help.out(), /^Usage: sluice status/);
});

test('formatStatus: columns padded to the widest cell; no sessions', () => {
  const text = formatStatus(
    [{ name: 'a-long-route-name', kind: 'route', proto: 'tcp', state: 'up', listen: 'tcp://[::]:22', address: '[::]:22', upstream: 'db.internal:22', active: 0, bytesFromClient: 0, bytesToClient: 0, packetsFromClient: 0, packetsToClient: 0, settings: {} }],
    { total: 0, truncated: false, sessions: [] },
  );
  assert.equal(
    text,
    ['ROUTE              PROTO  LISTEN         BOUND    UPSTREAM        ACTIVE', 'a-long-route-name  tcp    tcp://[::]:22  [::]:22  db.internal:22  0', '', 'SESSIONS: 0', ''].join('\n'),
  );
});

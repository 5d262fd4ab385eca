import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort, tcpServer, waitFor } from '../helpers/net.js';
import { runSluice } from '../helpers/cli.js';
import { tempDir } from '../helpers/peers.js';
import { refusedAfterConnect } from '../bans/helpers.js';

const TOKEN = 'bans-test-token-0123456789';

function sluice(t: TestContext, args: string[], env: Record<string, string> = {}) {
  return runSluice(t, args, { SLUICE_ADMIN: '', SLUICE_ADMIN_TOKEN: '', ...env });
}

/** True when the route closes a new connection from 127.0.0.1 without relaying a byte. */
async function refused(t: TestContext, port: number): Promise<boolean> {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  s.on('error', () => {});
  t.after(() => s.destroy());
  return refusedAfterConnect(s);
}

test('sluice bans: add, list and remove against a running `sluice run`; the state file follows; bad use is exit 2', async (t) => {
  const dir = await tempDir(t);
  const up = await tcpServer(t, (s) => s.on('data', (d) => s.write(d)));
  const [adminPort, routePort] = [await freePort(), await freePort()];
  const cfg = join(dir, 'sluice.yaml');
  await writeFile(
    cfg,
    `routes:
  ssh:
    listen: tcp://127.0.0.1:${routePort}
    upstream: 127.0.0.1:${up.port}
bans: { stateDir: ${join(dir, 'state')} }
accessLog: { output: off }
admin: { listen: 127.0.0.1:${adminPort}, token: ${TOKEN} }
lifecycle: { drainTimeout: 1s }
`,
  );
  const run = sluice(t, ['run', '--config', cfg]);
  await waitFor(() => run.err().includes('route up'), 'sluice run started', 10_000);

  const add = sluice(t, ['bans', 'add', '127.0.0.1', '--duration', '1h', '--reason', 'cli test', '--config', cfg]);
  assert.equal(await add.exited, 0, add.err());
  assert.match(add.out(), /^banned 127\.0\.0\.1 until \d{4}-\d\d-\d\dT/);
  assert.equal(await refused(t, routePort), true);

  const list = sluice(t, ['bans', '--admin', `127.0.0.1:${adminPort}`], { SLUICE_ADMIN_TOKEN: TOKEN });
  assert.equal(await list.exited, 0, list.err());
  const lines = list.out().trimEnd().split('\n');
  assert.match(lines[0]!, /^TARGET\s+SOURCE\s+EXPIRES\s+REASON$/);
  assert.match(lines[1]!, /^127\.0\.0\.1\s+api\s+\S+\s+cli test$/);
  await waitFor(() => run.err().includes('"ban added"'), 'the audit line');
  const saved = JSON.parse(await readFile(join(dir, 'state', 'bans.json'), 'utf8')) as { bans: { target: string }[] };
  assert.deepEqual(saved.bans.map((b) => b.target), ['127.0.0.1']);

  const noToken = sluice(t, ['bans', 'remove', '127.0.0.1', '--admin', `127.0.0.1:${adminPort}`]);
  assert.equal(await noToken.exited, 1);
  assert.match(noToken.err(), /needs a valid token \(401\)/);

  const rm = sluice(t, ['bans', 'remove', '127.0.0.1', '--config', cfg]);
  assert.equal(await rm.exited, 0, rm.err());
  assert.equal(rm.out(), 'removed the ban on 127.0.0.1\n');
  assert.equal(await refused(t, routePort), false);
  const again = sluice(t, ['bans', 'remove', '127.0.0.1', '--config', cfg]);
  assert.equal(await again.exited, 1);
  assert.match(again.err(), /no ban on 127\.0\.0\.1/);

  const noDuration = sluice(t, ['bans', 'add', '127.0.0.1', '--config', cfg]);
  assert.equal(await noDuration.exited, 2);
  assert.match(noDuration.err(), /add needs --duration/);
  const badAddress = sluice(t, ['bans', 'add', '127.0.0.300', '--duration', '1h', '--config', cfg]);
  assert.equal(await badAddress.exited, 1);
  assert.match(badAddress.err(), /answered 400 for \/api\/bans: address: /);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { freePort, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { runSluice } from '../helpers/cli.js';
import { tempDir } from '../helpers/peers.js';

/** Resolves once nothing accepts on `port` any more (the TCP listener closed: the drain began). */
async function refused(port: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const s = net.connect({ host: '127.0.0.1', port });
    const outcome = await once(s, 'connect').then(
      () => 'open',
      (e: NodeJS.ErrnoException) => e.code,
    );
    s.destroy();
    if (outcome === 'ECONNREFUSED') return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`port ${port} still accepts`);
}

test('cli: a second SIGTERM during the drain stops at once, ending the open UDP session with reason shutdown', async (t) => {
  const dir = await tempDir(t);
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const [udpPort, tcpPort] = [await freePort('udp'), await freePort('tcp')];
  const log = join(dir, 'access.log');
  const file = join(dir, 'sluice.yaml');
  await writeFile(
    file,
    `routes:
  game:
    listen: udp://127.0.0.1:${udpPort}
    upstream: 127.0.0.1:${echo.port}
  marker:
    listen: tcp://127.0.0.1:${tcpPort}
    upstream: 127.0.0.1:${up.port}
accessLog: { output: ${log} }
lifecycle: { drainTimeout: 60s }
`,
  );
  const p = runSluice(t, ['run', '--config', file]);
  const c = await udpClient(t);
  await waitFor(() => {
    c.send(udpPort, 'ping');
    return c.inbox.length > 0;
  }, 'the udp route to answer');

  p.child.kill('SIGTERM');
  await refused(tcpPort); // the graceful stop has begun; the UDP session is draining
  assert.equal(p.child.exitCode, null, 'the open UDP session holds the drain');
  const second = performance.now();
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0, p.err());
  const tookMs = performance.now() - second;
  assert.ok(tookMs < 10_000, `exited ${Math.round(tookMs)} ms after the second signal (drainTimeout 60 s)`);
  const ends = (await readFile(log, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string; route: string; reason?: string })
    .filter((r) => r.event === 'end' && r.route === 'game');
  assert.deepEqual(
    ends.map((r) => r.reason),
    ['shutdown'],
  );
});

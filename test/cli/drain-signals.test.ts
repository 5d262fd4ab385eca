import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { freePort, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { runSluice } from '../helpers/cli.js';
import { tempDir } from '../helpers/peers.js';
import { perConfigDatapath } from '../datapath/stream-datapaths.js';

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

// Once per datapath: the TCP connection that holds the drain is a joined pair in the addon on native.
perConfigDatapath()('cli: a second SIGTERM during the drain stops at once, ending the open UDP session and TCP connection with reason shutdown', async (t, datapathLine) => {
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
${datapathLine}`,
  );
  const p = runSluice(t, ['run', '--config', file]);
  const c = await udpClient(t);
  await waitFor(() => {
    c.send(udpPort, 'ping');
    return c.inbox.length > 0;
  }, 'the udp route to answer');
  const sock = net.connect({ host: '127.0.0.1', port: tcpPort, allowHalfOpen: true });
  sock.on('error', () => {});
  t.after(() => sock.destroy());
  await once(sock, 'connect');
  const clientPort = sock.localPort;
  sock.write('one');
  assert.equal(String((await once(sock, 'data'))[0]), 'one');

  p.child.kill('SIGTERM');
  await refused(tcpPort); // the graceful stop has begun; the UDP session and TCP connection are draining
  assert.equal(p.child.exitCode, null, 'the open sessions hold the drain');
  sock.write('two');
  assert.equal(String((await once(sock, 'data'))[0]), 'two', 'a live connection still relays during the drain');
  // Closed by the stop: a FIN ('end'), or a reset ('close') where the relay's close found bytes unread.
  const sockEnded = Promise.race([once(sock, 'end'), once(sock, 'close')]);
  const second = performance.now();
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0, p.err());
  const tookMs = performance.now() - second;
  assert.ok(tookMs < 10_000, `exited ${Math.round(tookMs)} ms after the second signal (drainTimeout 60 s)`);
  await sockEnded;
  const ends = (await readFile(log, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string; route: string; clientPort?: number; reason?: string; bytesFromClient?: number; bytesToClient?: number })
    // The probes of refused() that reached the listener before it closed end as client-closed.
    .filter((r) => r.event === 'end' && (r.route === 'game' || r.clientPort === clientPort));
  assert.deepEqual(
    ends.map((r) => [r.route, r.reason]).sort(),
    [
      ['game', 'shutdown'],
      ['marker', 'shutdown'],
    ],
  );
  const marker = ends.find((r) => r.route === 'marker')!;
  assert.deepEqual([marker.bytesFromClient, marker.bytesToClient], [6, 6]);
});

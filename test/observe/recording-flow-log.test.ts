import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, open, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readAll, sleep, tcpConnect, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { startApp, tempDir } from '../admin/app-helper.js';
import type { FlowRecord } from '../../src/observe/flow-records.js';
import { RotatingFileWriter, type RotatingFs } from '../../src/observe/rotating-file.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { perConfigDatapath } from '../datapath/stream-datapaths.js';

/** Every line of `base` and its rotated files, oldest file first (base.N … base.1, base). */
async function readRotated(dir: string, name: string): Promise<{ records: FlowRecord[]; files: { name: string; size: number }[] }> {
  const names = (await readdir(dir)).filter((n) => n === name || n.startsWith(`${name}.`));
  const order = (n: string) => (n === name ? 0 : Number(n.slice(name.length + 1)));
  names.sort((a, b) => order(b) - order(a));
  const records: FlowRecord[] = [];
  const files: { name: string; size: number }[] = [];
  for (const n of names) {
    const text = await readFile(join(dir, n), 'utf8');
    files.push({ name: n, size: (await stat(join(dir, n))).size });
    for (const line of text.split('\n')) if (line !== '') records.push(JSON.parse(line) as FlowRecord);
  }
  return { records, files };
}

// Once per datapath (UDP and TCP alike): the native one counts in the addon.
perConfigDatapath()('flow log: start, updates and end of UDP and TCP flows in a size-rotated file, joined to the access log by flowId', async (t, datapathLine) => {
  const dir = await tempDir(t);
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const MAX = 1500;
  const s = await startApp(
    t,
    `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    udp: { idleTimeout: 400ms }
  shell:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
accessLog: { output: ${join(dir, 'access.log')} }
flowLog: { output: ${join(dir, 'flow.log')}, updateInterval: 300ms, maxBytes: ${MAX}, maxFiles: 50 }
lifecycle: { drainTimeout: 1s }
${datapathLine}`,
  );

  // A UDP flow that lives about 1.3 s: one 20-byte datagram each way every 100 ms.
  const c = await udpClient(t);
  for (let i = 0; i < 12; i++) {
    c.send(s.port('game'), 'abcdefghijklmnopqrst');
    await c.next();
    await sleep(100);
  }
  const sock = await tcpConnect(t, s.port('shell'));
  sock.end('ping');
  assert.equal((await readAll(sock)).toString(), 'ping');
  await waitFor(() => s.app.routes.routes().every((r) => r.active === 0), 'both flows ended', 5000);
  await s.stop(); // flushes the outputs

  const { records, files } = await readRotated(dir, 'flow.log');
  assert.ok(files.length >= 3, `the file was rotated (${files.map((f) => f.name).join(', ')})`);
  for (const f of files) assert.ok(f.size <= MAX, `${f.name} is ${f.size} bytes, at most ${MAX}`);

  const udp = records.filter((r) => r.route === 'game');
  assert.deepEqual([udp[0]!.event, udp.at(-1)!.event], ['start', 'end']);
  const updates = udp.filter((r) => r.event === 'update');
  assert.ok(updates.length >= 2, `periodic updates (${updates.length})`);
  assert.equal(new Set(udp.map((r) => r.flowUuid)).size, 1, 'one UUID for every record of the flow');
  assert.equal(new Set(udp.map((r) => r.flowId)).size, 1);
  for (let i = 1; i < udp.length; i++) {
    assert.ok(udp[i]!.bytesFromClient >= udp[i - 1]!.bytesFromClient, 'counters are totals so far, never going back');
    assert.ok(Date.parse(udp[i]!.time) >= Date.parse(udp[i - 1]!.time));
  }
  assert.ok(updates.some((u) => u.bytesFromClient > 0 && u.bytesFromClient < 240), 'an update in the middle of the flow');
  const end = udp.at(-1)!;
  assert.deepEqual(
    { reason: end.reason, direction: end.direction, source: end.source, proto: end.proto, bytesFromClient: end.bytesFromClient, bytesToClient: end.bytesToClient, packetsFromClient: end.packetsFromClient, rxBytes: end.rxBytes, txPackets: end.txPackets },
    { reason: 'idle-timeout', direction: 'ingress', source: 'sluice', proto: 'udp', bytesFromClient: 240, bytesToClient: 240, packetsFromClient: 12, rxBytes: 240, txPackets: 12 },
  );
  assert.equal(end.clientPort, c.port);
  assert.equal(end.upstreamPort, echo.port);

  const tcp = records.filter((r) => r.route === 'shell');
  assert.deepEqual(tcp.map((r) => r.event), ['start', 'end']);
  assert.equal(tcp[1]!.bytesFromClient, 4);
  assert.equal(tcp[1]!.bytesToClient, 4);

  // The access log's summary line carries the same flowId and counters.
  const access = (await readFile(join(dir, 'access.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const accessEnd = access.find((a) => a.event === 'end' && a.route === 'game')!;
  assert.equal(accessEnd.flowId, end.flowId);
  assert.equal(accessEnd.bytesFromClient, end.bytesFromClient);
  assert.equal(accessEnd.startTime, end.startTime);
});

test('flow log: a reload moves records to a new output; the update interval can be turned off', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'sluice.yaml');
  const echo = await udpEcho(t);
  const yaml = (flowLog: string) => `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
    udp: { idleTimeout: 200ms }
accessLog: { output: off }
flowLog: ${flowLog}
lifecycle: { drainTimeout: 1s }
`;
  const s = await startApp(t, yaml(`{ output: ${join(dir, 'a.log')} }`), { file });
  const c = await udpClient(t);
  const flow = async () => {
    c.send(s.port('game'), 'x');
    await c.next();
    await waitFor(() => s.app.routes.route('game')!.active === 0, 'session ended');
  };
  await flow();
  await writeFile(file, yaml(`{ output: ${join(dir, 'b.log')}, updateInterval: 0s }`));
  await s.app.reload();
  await flow();
  await s.stop();
  const events = async (name: string) => (await readFile(join(dir, name), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as FlowRecord).event);
  assert.deepEqual(await events('a.log'), ['start', 'end']);
  assert.deepEqual(await events('b.log'), ['start', 'end']);
  assert.deepEqual(s.app.ops.status().flowLog, { output: 'off' }, 'stopped: closed');
});

test('file outputs batch their writes: at most one write per linger period, none delayed by close', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock();
  let writes = 0;
  const fs: RotatingFs = {
    open: async (p, f) => {
      const h = await open(p, f);
      return { write: (b, o, l) => (writes++, h.write(b, o, l)), stat: () => h.stat(), close: () => h.close() };
    },
    rename,
    mkdir,
  };
  const file = join(dir, 'flows.log');
  const w = new RotatingFileWriter(file, { maxBytes: 1 << 20, maxFiles: 1, lingerMs: 20, clock, fs });
  for (let i = 0; i < 500; i++) w.write(`{"n":${i}}\n`);
  await sleep(20);
  assert.equal(writes, 0, 'waiting for company');
  clock.advance(20);
  await waitFor(() => w.written === 500, 'first batch written');
  assert.equal(writes, 1, '500 lines, one write');
  for (let i = 0; i < 3; i++) w.write('{"late":true}\n');
  await w.close(); // does not wait for the clock
  assert.equal(writes, 2);
  assert.equal((await readFile(file, 'utf8')).split('\n').length - 1, 503);
});

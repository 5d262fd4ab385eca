import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readAll, refusedPort, sleep, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { request, startApp, tempDir } from '../admin/app-helper.js';
import { parseExposition } from './prom-text.js';
import { perConfigDatapath } from '../datapath/stream-datapaths.js';
import type { FlowRecord } from '../../src/observe/flow-records.js';

// Recording of TCP connections on both stream datapaths: on native the bytes of a joined pair
// never reach JavaScript, so live counters come from the engine and the end from its end event;
// every sink must see the same numbers as on js.
const test = perConfigDatapath();

const yaml = (dir: string, up: number, dead: number, datapathLine: string) => `
routes:
  shell:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up}
  dead:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${dead}
accessLog: { output: ${join(dir, 'access.log')} }
flowLog: { output: ${join(dir, 'flow.log')}, updateInterval: 200ms }
admin: { listen: 127.0.0.1:0 }
lifecycle: { drainTimeout: 1s }
${datapathLine}`;

async function metrics(base: string): Promise<Map<string, number>> {
  const r = await request(`${base}/metrics`);
  assert.equal(r.status, 200);
  return parseExposition(r.body);
}

async function lines<T>(file: string): Promise<T[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

test('TCP recording: live counters in flow-log updates and /metrics, then one end with the same counters in every sink', async (t, datapathLine) => {
  const dir = await tempDir(t);
  const up = await tcpServer(t);
  const dead = await refusedPort(t);
  const s = await startApp(t, yaml(dir, up.port, dead, datapathLine));
  const base = s.admin();
  const kind = datapathLine.includes('native') ? 'native' : 'js';
  assert.equal((await metrics(base)).get(`sluice_datapath_info{kind="${kind}",proto="tcp"}`), 1, `the TCP route runs on ${kind}`);

  // A connection that stays open across flow-log updates: 3 x 100 bytes each way, then 50 more.
  const sock = await tcpConnect(t, s.port('shell'));
  const clientPort = sock.localPort;
  for (let i = 0; i < 3; i++) {
    sock.write(Buffer.alloc(100, i));
    let got = 0;
    while (got < 100) got += ((await once(sock, 'data'))[0] as Buffer).length;
  }
  const live = await metrics(base);
  assert.equal(live.get('sluice_bytes_total{direction="from_client",proto="tcp",route="shell"}'), 300, 'live bytes counted at the scrape');
  assert.equal(live.get('sluice_bytes_total{direction="to_client",proto="tcp",route="shell"}'), 300);
  assert.equal(live.get('sluice_sessions_active{proto="tcp",route="shell"}'), 1);
  await waitFor(() => s.app.routes.route('shell')!.active === 1, 'connection live');
  // An update record carries the live counters (200 ms interval). One written while the third
  // 100 bytes were on their way back (300 from the client, 200 to it) is a true record too, so the
  // one looked for is the first with both.
  let update: FlowRecord | undefined;
  for (let i = 0; i < 100 && !update; i++) {
    update = (await lines<FlowRecord>(join(dir, 'flow.log')).catch(() => [])).find((x) => x.route === 'shell' && x.event === 'update' && x.bytesFromClient === 300 && x.bytesToClient === 300);
    if (!update) await sleep(50);
  }
  assert.ok(update, 'a flow-log update with the 300 bytes each way');
  assert.equal(update!.bytesToClient, 300);

  sock.end(Buffer.alloc(50, 9));
  assert.equal((await readAll(sock)).length, 50);
  await waitFor(() => s.app.routes.route('shell')!.active === 0, 'connection ended');
  // A dial that fails is recorded too.
  const refused = await tcpConnect(t, s.port('dead'));
  await once(refused, 'end');
  await waitFor(() => s.app.routes.route('dead')!.active === 0, 'failed dial released');
  const after = await metrics(base);
  await s.stop(); // flushes the files

  const flows = (await lines<FlowRecord>(join(dir, 'flow.log'))).filter((r) => r.route === 'shell');
  assert.deepEqual([flows[0]!.event, flows.at(-1)!.event], ['start', 'end']);
  assert.equal(flows.filter((r) => r.event === 'end').length, 1);
  const end = flows.at(-1)!;
  assert.deepEqual(
    { reason: end.reason, proto: end.proto, bytesFromClient: end.bytesFromClient, bytesToClient: end.bytesToClient, upstreamPort: end.upstreamPort, clientPort: end.clientPort },
    { reason: 'client-closed', proto: 'tcp', bytesFromClient: 350, bytesToClient: 350, upstreamPort: up.port, clientPort },
  );
  const access = await lines<Record<string, unknown>>(join(dir, 'access.log'));
  const accessEnd = access.filter((a) => a.event === 'end' && a.route === 'shell');
  assert.equal(accessEnd.length, 1);
  assert.equal(accessEnd[0]!.flowId, end.flowId);
  assert.equal(accessEnd[0]!.reason, 'client-closed');
  assert.equal(accessEnd[0]!.bytesFromClient, 350);
  assert.equal(accessEnd[0]!.bytesToClient, 350);
  assert.equal(after.get('sluice_bytes_total{direction="from_client",proto="tcp",route="shell"}'), 350, 'the end adds only what the scrape had not counted');
  assert.equal(after.get('sluice_bytes_total{direction="to_client",proto="tcp",route="shell"}'), 350);
  assert.equal(after.get('sluice_sessions_ended_total{proto="tcp",reason="client-closed",route="shell"}'), 1);
  assert.equal(after.get('sluice_dial_errors_total{code="SLUICE_ERR_DIAL_FAILED",proto="tcp",route="dead"}'), 1);
  assert.ok(!access.some((a) => a.route === 'dead'), 'a connection that never started has no access-log line (its dial error is a metric)');
});

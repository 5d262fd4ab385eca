import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readAll, refusedPort, tcpConnect, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { request, startApp, tempDir } from '../admin/app-helper.js';
import { parseExposition } from './prom-text.js';
import { perConfigDatapath } from '../datapath/stream-datapaths.js';

const routes = (udpUp: number, tcpUp: number, deadPort: number) => `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${udpUp}
  shell:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${tcpUp}
  dead:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${deadPort}
    tcp: { connectTimeout: 2s }
  walled:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${udpUp}
    acl: { deny: [127.0.0.0/8] }
accessLog: { output: off }
lifecycle: { drainTimeout: 1s }
`;

async function scrape(base: string): Promise<{ text: string; samples: Map<string, number>; type: string }> {
  const r = await request(`${base}/metrics`);
  assert.equal(r.status, 200);
  return { text: r.body, samples: parseExposition(r.body), type: String(r.headers['content-type']) };
}

// Once per datapath (UDP and TCP alike): the native one counts in the addon.
perConfigDatapath()('metrics: UDP and TCP traffic through routes, scraped from /metrics over HTTP', async (t, datapathLine) => {
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const deadPort = await refusedPort(t);
  const s = await startApp(t, routes(echo.port, up.port, deadPort) + 'admin: { listen: 127.0.0.1:0 }\n' + datapathLine);
  const base = s.admin();

  // UDP: one session, three 10-byte datagrams each way, still open at the scrape.
  const c = await udpClient(t);
  for (let i = 0; i < 3; i++) {
    c.send(s.port('game'), '0123456789');
    assert.equal((await c.next()).length, 10);
  }
  // TCP: one connection, 5 bytes each way, closed by the client.
  const sock = await tcpConnect(t, s.port('shell'));
  sock.end('hello');
  assert.equal((await readAll(sock)).toString(), 'hello');
  await waitFor(() => s.app.routes.route('shell')!.active === 0, 'tcp connection ended');
  // A dial to a closed port, and a client the ACL refuses.
  const dead = await tcpConnect(t, s.port('dead'));
  await once(dead, 'end'); // the relay closed it (the client allows half-open, so no 'close')
  const walled = await udpClient(t);
  walled.send(s.port('walled'), 'x');
  await waitFor(() => s.app.ops.recent.denials.size === 1, 'denial recorded');

  const { samples: m, text, type } = await scrape(base);
  assert.match(type, /^text\/plain; version=0\.0\.4/);
  const v = (key: string) => m.get(key);
  assert.equal(v('sluice_sessions_active{proto="udp",route="game"}'), 1);
  assert.equal(v('sluice_sessions_active{proto="tcp",route="shell"}'), 0);
  assert.equal(v('sluice_sessions_started_total{proto="udp",route="game"}'), 1);
  assert.equal(v('sluice_sessions_started_total{proto="tcp",route="shell"}'), 1);
  const shellEnded = [...m].filter(([k]) => k.startsWith('sluice_sessions_ended_total{') && k.includes('route="shell"'));
  assert.equal(shellEnded.reduce((n, [, x]) => n + x, 0), 1, 'one TCP connection ended');
  assert.equal(v('sluice_bytes_total{direction="from_client",proto="udp",route="game"}'), 30, 'live UDP bytes are counted at the scrape');
  assert.equal(v('sluice_bytes_total{direction="to_client",proto="udp",route="game"}'), 30);
  assert.equal(v('sluice_packets_total{direction="from_client",proto="udp",route="game"}'), 3);
  assert.equal(v('sluice_packets_total{direction="to_client",proto="udp",route="game"}'), 3);
  assert.equal(v('sluice_bytes_total{direction="from_client",proto="tcp",route="shell"}'), 5);
  assert.equal(v('sluice_bytes_total{direction="to_client",proto="tcp",route="shell"}'), 5);
  assert.equal(v('sluice_dial_errors_total{code="SLUICE_ERR_DIAL_FAILED",proto="tcp",route="dead"}'), 1);
  assert.equal(v('sluice_dial_duration_seconds_count{proto="tcp",result="error",route="dead"}'), 1);
  assert.equal(v('sluice_dial_duration_seconds_count{proto="udp",result="ok",route="game"}'), 1);
  assert.equal(v('sluice_sessions_rejected_total{proto="udp",reason="acl-cidr",route="walled"}'), 1);
  for (const r of ['game', 'shell', 'dead', 'walled']) assert.equal(v(`sluice_route_up{route="${r}"}`), 1, r);
  assert.equal(v('sluice_records_dropped_total{log="access"}'), undefined, 'access log off: no series');
  assert.equal(v('sluice_config_reloads_total{result="ok"}'), 0);
  assert.ok(!text.includes(String(c.port)) && !text.includes(String(walled.port)), 'no client ports in labels');
  assert.ok(!text.includes('process_cpu_user_seconds_total'), 'process metrics off by default');

  // More traffic on the same live session: the next scrape counts only the difference.
  c.send(s.port('game'), '01234');
  await c.next();
  const again = (await scrape(base)).samples;
  assert.equal(again.get('sluice_bytes_total{direction="from_client",proto="udp",route="game"}'), 35);
  assert.equal(again.get('sluice_packets_total{direction="to_client",proto="udp",route="game"}'), 4);
});

test('metrics: record drops per log, process metrics on reload, no /metrics without admin', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'sluice.yaml');
  const echo = await udpEcho(t);
  const base = `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
accessLog: { output: ${join(dir, 'access.log')} }
flowLog: { output: ${join(dir, 'flow.log')} }
lifecycle: { drainTimeout: 1s }
`;
  const s = await startApp(t, `${base}admin: { listen: 127.0.0.1:0 }\nmetrics: { process: true }\n`, { file });
  const url = s.admin();
  let m = (await scrape(url)).samples;
  assert.equal(m.get('sluice_records_dropped_total{log="access"}'), 0);
  assert.equal(m.get('sluice_records_dropped_total{log="flow"}'), 0);
  assert.ok(m.has('process_cpu_user_seconds_total'), 'process metrics on');
  assert.ok([...m.keys()].some((k) => k.startsWith('nodejs_heap_size_used_bytes')));

  await writeFile(file, `${base}admin: { listen: ${url.replace('http://', '')} }\nmetrics: { process: false }\n`);
  await s.app.reload();
  assert.equal(s.app.ops.adminAddress?.port, Number(new URL(url).port), 'same admin listener');
  m = (await scrape(url)).samples;
  assert.ok(!m.has('process_cpu_user_seconds_total'), 'process metrics off after reload');
  assert.equal(m.get('sluice_config_reloads_total{result="ok"}'), 1, 'counters survive a reload');

  await writeFile(file, base);
  await s.app.reload();
  assert.equal(s.app.ops.adminAddress, undefined);
  assert.equal(s.app.ops.registry, undefined, 'no admin, no metrics registry');
  await assert.rejects(request(`${url}/metrics`), /ECONNREFUSED/);
});

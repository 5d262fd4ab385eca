import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { udpClient, waitFor } from '../helpers/net.js';
import { connected, peerAgentConfig, peerGatewayConfig, startAgent, startGateway, udpEcho } from '../connect/connect-helpers.js';
import type { PeersView } from '../../src/ops/peer-view.js';
import { formatPeers } from '../../src/cli/status.js';
import { parseExposition } from '../observe/prom-text.js';
import { getJson, request, tempDir } from './app-helper.js';
import { startLaptopApp } from './peer-app.js';

/** Polls `read` until `ok` accepts its value (or 5 s pass); returns the last value. */
async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 5000;
  let v = await read();
  while (!ok(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    v = await read();
  }
  return v;
}

const records = async (file: string) =>
  (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** A gateway and `laptop` as a whole App whose connect entries reach `home`, which never connects. */
async function laptopWithoutHome(t: TestContext, extra: (dir: string) => string) {
  const dir = await tempDir(t, 'sluice-peer-offline-');
  const gw = await startGateway(t, peerGatewayConfig(dir));
  const s = await startLaptopApp(t, gw, '    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0 }\n    home-ssh: { peer: home, service: ssh, listen: tcp://127.0.0.1:0 }', extra(dir));
  const agent = s.app.exposure!.agent!;
  await waitFor(() => agent.state === 'connected', 'laptop connected');
  const port = (route: string) => agent.connectRoutes.find((r) => r.name === route)!.local.port;
  return { dir, gw, s, port };
}

test('a connect peer that is not connected to the gateway: peer-offline in the access log, flow records, metrics and the peer view', async (t) => {
  const { dir, s, port } = await laptopWithoutHome(t, (d) => `accessLog: { output: ${join(d, 'access.log')} }\nflowLog: { output: ${join(d, 'flows.jsonl')}, updateInterval: 0s }\n`);
  const access = join(dir, 'access.log');
  const flows = join(dir, 'flows.jsonl');

  // UDP: the session starts (the listener does not wait for a path), then ends with peer-offline.
  const c = await udpClient(t);
  c.send(port('connect/home-wg'), 'anyone?');
  const endOf = (lines: Record<string, unknown>[]) => lines.find((r) => r.event === 'end' && r.route === 'connect/home-wg');
  const end = endOf(await until(() => records(access), (l) => endOf(l) !== undefined));
  assert.ok(end, 'an end line for the UDP session');
  assert.equal(end.reason, 'peer-offline');
  const pathLines = (await records(access)).filter((r) => r.event === 'peer-path' && r.peer === 'home');
  assert.ok(pathLines.some((r) => r.state === 'peer-offline' && r.reason === 'peer-offline: home is not connected to the gateway'), JSON.stringify(pathLines));
  assert.ok(!pathLines.some((r) => r.state === 'connected'), `never connected: ${JSON.stringify(pathLines)}`);
  await s.app.ops.stop(); // flushes the flow log (the app stops it again in t.after: idempotent)
  const rec = (await records(flows)).find((r) => r.event === 'end' && r.route === 'connect/home-wg');
  assert.equal(rec?.reason, 'peer-offline');
});

test('peer-offline: the dial of a TCP connect listener fails with its own code, the link and connect views say peer-offline', async (t) => {
  const { gw, s, port } = await laptopWithoutHome(t, () => 'accessLog: { output: off }\n');

  const sock = net.connect(port('connect/home-ssh'), '127.0.0.1');
  t.after(() => sock.destroy());
  sock.on('error', () => {});
  await once(sock, 'close');
  const c = await udpClient(t);
  c.send(port('connect/home-wg'), 'anyone?');
  const metrics = async () => parseExposition((await request(`${s.admin()}/metrics`)).body);
  const ended = 'sluice_sessions_ended_total{proto="udp",reason="peer-offline",route="connect/home-wg"}';
  const m = await until(metrics, (x) => x.get(ended) === 1);
  assert.equal(m.get(ended), 1);
  assert.equal(m.get('sluice_dial_errors_total{code="SLUICE_ERR_PEER_OFFLINE",proto="tcp",route="connect/home-ssh"}'), 1);
  assert.equal(m.get('sluice_peer_links{path="relayed",peer="home",state="peer-offline"}'), 1);

  const v = await getJson<PeersView>(`${s.admin()}/api/peers`);
  const link = v.links.find((l) => l.peer === 'home')!;
  assert.equal(link.state, 'peer-offline');
  assert.equal(link.lastRefusal, 'peer-offline');
  assert.equal(link.reason, 'peer-offline: home is not connected to the gateway');
  assert.deepEqual(v.connect.map((x) => [x.name, x.state]), [['home-wg', 'peer-offline'], ['home-ssh', 'peer-offline']]);
  const text = formatPeers(v).join('\n');
  assert.doesNotMatch(text, /connected \(relayed\)/);
  assert.match(text, /^home\s+\S+\s+peer-offline\s+-\s/m);

  // home comes online: the next session reaches it and the link is no longer peer-offline.
  const echo = await udpEcho(t);
  const home = await startAgent(t, peerAgentConfig(gw, 'home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop] }\n`));
  await connected(home.agent);
  // Its OFFER travels before the ping that makes it reachable, so PEER_OPEN finds the service offered.
  await waitFor(() => gw.gateway.agent('home')?.reachable === true, 'home reachable');
  const c2 = await udpClient(t);
  c2.send(port('connect/home-wg'), 'hello home');
  assert.equal((await c2.next(5000)).toString(), 'hello home');
  const back = await getJson<PeersView>(`${s.admin()}/api/peers`);
  assert.notEqual(back.links.find((l) => l.peer === 'home')!.state, 'peer-offline');
  assert.equal(back.links.find((l) => l.peer === 'home')!.lastRefusal, null);
});

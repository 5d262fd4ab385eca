import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSluice } from '../helpers/cli.js';
import { readAll, tcpConnect, tcpServer, udpClient, udpEcho } from '../helpers/net.js';
import { tempDir } from '../helpers/peers.js';
import { startRedis } from '../helpers/redis.js';
import type { AgentStatusView } from '../../src/ops/agent-view.js';

/*
 * Three gateways and two agents as separate `sluice run` processes on loopback, with a real
 * redis-server for the gateways' fleet (docs/fleet.md, "Agents on a fleet"). Every wait polls an
 * admin API with a deadline; nothing sleeps for a fixed time.
 */

const TOKEN = 'fleet-token-0123456789abcdef';
const AGENTS = ['home1', 'home2'];

interface Proc {
  readonly run: ReturnType<typeof runSluice>;
  /** The admin port, from the process's own `admin listening` line (port 0 in the config). */
  admin: number;
}

/** The JSON log lines of `p` so far. */
function logLines(p: Proc): Record<string, unknown>[] {
  return (p.run.out() + '\n' + p.run.err())
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** Waits for a log line of `p` that `match` finds (ports the process picked itself). */
async function logLine(p: Proc, what: string, match: (j: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return (await until(what, 20_000, async () => (p.run.child.exitCode === null ? logLines(p).find(match) : null), (j) => j !== undefined, [p]))!;
}

async function health(admin: number): Promise<{ agent?: AgentStatusView } | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${admin}/api/health`, { signal: AbortSignal.timeout(1000) });
    return r.ok ? ((await r.json()) as { agent?: AgentStatusView }) : undefined;
  } catch {
    return undefined;
  }
}

/** Polls `read` until `ok` holds or `ms` pass; returns the value that satisfied it. */
async function until<T>(what: string, ms: number, read: () => Promise<T>, ok: (v: T) => boolean, proc?: Proc[]): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end || v === null) {
      const logs = (proc ?? []).map((p) => p.run.out().slice(-2000) + p.run.err().slice(-2000)).join('\n---\n');
      throw new Error(`timed out after ${ms}ms waiting for ${what}; last: ${JSON.stringify(v)?.slice(0, 2000)}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts `sluice run` on `yaml` with an admin listener on a port it picks; resolves once that listens. */
async function startProc(t: TestContext, dir: string, name: string, yaml: string): Promise<Proc> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `admin:\n  listen: 127.0.0.1:0\n${yaml}`);
  const p: Proc = { run: runSluice(t, ['run', file]), admin: 0 };
  const line = await logLine(p, `${name}: admin listening`, (j) => j.msg === 'admin listening');
  p.admin = portOf(String(line.address));
  return p;
}

const portOf = (hp: string | undefined) => Number(hp?.slice(hp.lastIndexOf(':') + 1));

async function udpRoundTrip(client: Awaited<ReturnType<typeof udpClient>>, port: number, text: string): Promise<void> {
  client.inbox.length = 0;
  client.send(port, text);
  assert.equal((await client.next(3000)).toString(), text);
}

async function tcpRoundTrip(t: TestContext, port: number, text: string): Promise<void> {
  const c = await tcpConnect(t, port);
  c.end(text);
  assert.equal((await readAll(c)).toString(), text);
}

test('three gateway processes, two agents homed on all: echo through each, kill -9 one mid-stream, clients move, agents reconnect after its restart', { timeout: 120_000 }, async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const dir = await tempDir(t, 'sluice-homes-');
  const stateDir = join(dir, 'state');
  // Each gateway picks its port the first time; the restarted one listens on the same port again.
  const gwPorts = [0, 0, 0];
  const gatewayYaml = (i: number) =>
    `gateway:\n  listen: 127.0.0.1:${gwPorts[i]}\n  stateDir: ${stateDir}\n  ports: 1024-65535\n  agents:\n${AGENTS.map((a) => `    ${a}: { token: "${TOKEN}" }\n`).join('')}` +
    FLEET_YAML(redis.url, `gw-${i + 1}`);
  const startGw = async (i: number) => {
    const p = await startProc(t, dir, `gw${i + 1}`, gatewayYaml(i));
    const up = await logLine(p, `gw${i + 1} listening`, (j) => typeof j.fingerprint === 'string' && j.tcp !== undefined);
    gwPorts[i] = (up.tcp as { port: number }).port;
    return p;
  };
  const gateways: Proc[] = [];
  // The first one makes the certificate in the shared state dir: one fleet certificate, one pin.
  gateways.push(await startGw(0));
  gateways.push(...(await Promise.all([startGw(1), startGw(2)])));
  const pin = `sha256:${new X509Certificate(readFileSync(join(stateDir, 'gateway-cert.pem'))).fingerprint256.replace(/:/g, '').toLowerCase()}`;

  const udp = await udpEcho(t);
  const tcp = await tcpServer(t);
  const agents: Proc[] = [];
  for (const name of AGENTS) {
    agents.push(
      await startProc(
        t,
        dir,
        name,
        `agent:\n  name: ${name}\n  gateways: [${gwPorts.map((p) => `127.0.0.1:${p}`).join(', ')}]\n  token: "${TOKEN}"\n  fingerprint: ${pin}\n` +
          `  reconnect: { initial: 100ms, max: 1s }\n  expose:\n    wg: { local: 127.0.0.1:${udp.port}, remote: udp://127.0.0.1:0 }\n    web: { local: 127.0.0.1:${tcp.port}, remote: tcp://127.0.0.1:0 }\n`,
      ),
    );
  }
  const all = [...gateways, ...agents];
  const published = (a: Proc, gws: number[]) =>
    until(`${a.admin}: published on gateways ${gws.join(',')}`, 20_000, () => health(a.admin), (h) => gws.every((i) => h?.agent?.gateways[i]?.state === 'connected' && h.agent.gateways[i]!.published === 2), all);
  const ports: { udp: number; tcp: number }[][] = [];
  for (const a of agents) {
    const h = await published(a, [0, 1, 2]);
    ports.push(h!.agent!.gateways.map((g) => ({ udp: portOf(g.bound.wg), tcp: portOf(g.bound.web) })));
  }

  // The fleet sees both agents on all three gateways.
  const fleetView = async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${gateways[2]!.admin}/api/fleet`, { signal: AbortSignal.timeout(1000) });
      return ((await r.json()) as { agents: { name: string; gateways: string[] }[] | null }).agents;
    } catch {
      return null;
    }
  };
  const everywhere = AGENTS.map((name) => ({ name, gateways: ['gw-1', 'gw-2', 'gw-3'] }));
  await until('both agents on all three gateways in /api/fleet', 10_000, fleetView, (a) => JSON.stringify(a?.map((x) => ({ ...x, gateways: [...x.gateways].sort() }))) === JSON.stringify(everywhere), all);

  // Every agent on every gateway: UDP and TCP echo through each.
  const client = await udpClient(t);
  for (const [ai, p] of ports.entries()) {
    for (const [gi, { udp: u, tcp: c }] of p.entries()) {
      await udpRoundTrip(client, u, `udp ${AGENTS[ai]} via gw${gi + 1}`);
      await tcpRoundTrip(t, c, `tcp ${AGENTS[ai]} via gw${gi + 1}`);
    }
  }

  // Mid-stream: a UDP client on gw1, a long TCP connection on gw2, a UDP client on gw3 (agent home1).
  const mover = await udpClient(t);
  const steady = await udpClient(t);
  const long = await tcpConnect(t, ports[0]![1]!.tcp);
  let longEcho = '';
  long.on('data', (d: Buffer) => (longEcho += d.toString()));
  let target = ports[0]![0]!.udp;
  let seq = 0;
  const answers: { at: number; port: number }[] = [];
  mover.socket.on('message', () => answers.push({ at: Date.now(), port: target }));
  const sender = setInterval(() => {
    mover.send(target, `m${seq++}`);
    steady.send(ports[0]![2]!.udp, `s${seq}`);
  }, 20);
  t.after(() => clearInterval(sender));
  await until('answers through gw1', 5000, async () => answers.length, (n) => n >= 5);

  const killedAt = Date.now();
  gateways[0]!.run.child.kill('SIGKILL');
  // The client sees no answer for 300 ms, then moves to gw2.
  await until('the client notices gw1 is gone', 5000, async () => Date.now() - (answers.at(-1)?.at ?? 0), (quiet) => quiet > 300);
  target = ports[0]![1]!.udp;
  const movedAt = Date.now();
  const firstAfterMove = await until('an answer through gw2', 2000, async () => answers.find((a) => a.at >= movedAt && a.port === target), (a) => a !== undefined);
  const answerMs = firstAfterMove!.at - killedAt;
  assert.ok(answerMs < 2000, `answers through gw2 ${answerMs} ms after gw1 was killed`);
  t.diagnostic(`client moved: answers through gw2 ${firstAfterMove!.at - movedAt} ms after moving, ${answerMs} ms after kill -9`);

  // The agents keep serving through the other two, not restarted.
  for (const a of agents) {
    assert.equal(a.run.child.exitCode, null, 'agent still running');
    await until('gw1 seen lost', 5000, () => health(a.admin), (h) => h?.agent?.gateways[0]?.state !== 'connected' && h?.agent?.state === 'connected', all);
  }
  steady.inbox.length = 0;
  await until('steady stream through gw3 continues', 2000, async () => steady.inbox.length, (n) => n >= 3);
  long.write('still there');
  await until('long TCP through gw2 continues', 3000, async () => longEcho, (s) => s.endsWith('still there'));
  for (const [ai, p] of ports.entries()) {
    for (const gi of [1, 2]) {
      await udpRoundTrip(client, p[gi]!.udp, `after kill: udp ${AGENTS[ai]} via gw${gi + 1}`);
      await tcpRoundTrip(t, p[gi]!.tcp, `after kill: tcp ${AGENTS[ai]} via gw${gi + 1}`);
    }
  }

  // gw1 comes back: both agents reconnect and publish there within 5 s of its listener being up.
  gateways[0] = await startProc(t, dir, 'gw1', gatewayYaml(0));
  await logLine(gateways[0], 'gw1 listening again', (j) => typeof j.fingerprint === 'string' && j.tcp !== undefined);
  const restartedAt = Date.now();
  for (const [ai, a] of agents.entries()) {
    const h = await until(`${AGENTS[ai]} back on gw1`, 5000, () => health(a.admin), (v) => v?.agent?.gateways[0]?.state === 'connected' && v.agent.gateways[0]!.published === 2, [...gateways, ...agents]);
    t.diagnostic(`${AGENTS[ai]} published on the restarted gw1 ${Date.now() - restartedAt} ms after it answered`);
    const g = h!.agent!.gateways[0]!;
    await udpRoundTrip(client, portOf(g.bound.wg), `udp ${AGENTS[ai]} via restarted gw1`).catch(async (err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify((await health(a.admin))?.agent?.gateways)}\n${gateways[0]!.run.out().slice(-3000) + gateways[0]!.run.err().slice(-3000)}`);
    });
    await tcpRoundTrip(t, portOf(g.bound.web), `tcp ${AGENTS[ai]} via restarted gw1`);
  }
  clearInterval(sender);
  for (const a of agents) assert.equal(a.run.child.exitCode, null, 'no agent restarted');
});

/** The gateways' `fleet:` (docs/fleet.md): one Redis, one name each. */
function FLEET_YAML(url: string, name: string): string {
  return `  fleet: { redis: "${url}", name: ${name} }\n`;
}

test('two agents on two gateway processes of one fleet, no common gateway: a connect listener reaches the other, relayed through Redis, then direct', { timeout: 90_000 }, async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const dir = await tempDir(t, 'sluice-fleet-peers-');
  const stateDir = join(dir, 'state');
  const gwYaml = (i: number) =>
    `gateway:\n  listen: 127.0.0.1:0\n  stateDir: ${stateDir}\n  ports: 1024-65535\n  agents:\n    home: { token: "${TOKEN}" }\n    laptop: { token: "${TOKEN}" }\n` +
    `  fleet: { redis: "${redis.url}", name: gw-${i}, heartbeat: 200ms, ttl: 2s }\n`;
  const gw1 = await startProc(t, dir, 'gw1', gwYaml(1));
  const up1 = await logLine(gw1, 'gw1 listening', (j) => typeof j.fingerprint === 'string' && j.tcp !== undefined);
  const gw2 = await startProc(t, dir, 'gw2', gwYaml(2));
  const up2 = await logLine(gw2, 'gw2 listening', (j) => typeof j.fingerprint === 'string' && j.tcp !== undefined);
  const udp = await udpEcho(t);
  const agentYaml = (name: string, port: number, body: string) =>
    `agent:\n  name: ${name}\n  gateway: 127.0.0.1:${port}\n  token: "${TOKEN}"\n  fingerprint: ${String(up1.fingerprint)}\n  reconnect: { initial: 100ms, max: 1s }\n  peerCandidates: [loopback]\n${body}`;
  const home = await startProc(t, dir, 'home', agentYaml('home', (up1.tcp as { port: number }).port, `  expose:\n    wg: { local: 127.0.0.1:${udp.port}, peers: [laptop] }\n`));
  const laptop = await startProc(t, dir, 'laptop', agentYaml('laptop', (up2.tcp as { port: number }).port, `  connect:\n    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0 }\n`));
  const all = [gw1, gw2, home, laptop];
  const routeUp = await logLine(laptop, 'the connect listener', (j) => j.route === 'connect/home-wg' && typeof j.listen === 'string');
  const listen = portOf(String(routeUp.listen));
  // Both agents present in the fleet, each on its own gateway only.
  const fleetAgents = async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${gw2.admin}/api/fleet`, { signal: AbortSignal.timeout(1000) });
      return ((await r.json()) as { agents: { name: string; gateways: string[] }[] | null }).agents;
    } catch {
      return null;
    }
  };
  await until('both agents in the fleet view', 10_000, fleetAgents, (a) => JSON.stringify(a) === JSON.stringify([{ name: 'home', gateways: ['gw-1'] }, { name: 'laptop', gateways: ['gw-2'] }]), all);

  const client = await udpClient(t);
  await udpRoundTrip(client, listen, 'first, relayed between the gateways');
  const peers = async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${laptop.admin}/api/peers`, { signal: AbortSignal.timeout(1000) });
      return (await r.json()) as { links: { peer: string; path: string }[] };
    } catch {
      return undefined;
    }
  };
  await until('the direct path', 20_000, peers, (p) => p?.links.some((l) => l.peer === 'home' && l.path === 'direct') === true, all);
  for (let i = 0; i < 10; i++) await udpRoundTrip(client, listen, `direct ${i}`);
});

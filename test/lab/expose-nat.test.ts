import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT, ECHO_SERVICE, FORGER, Lab, MAIN, PUB_IP, labAvailable, type LabProcess } from './expose-lab.js';

/**
 * Issue 5 through real NATs (../shared/lab): gateway on `pub`, agent on `host-a` behind nat-a,
 * a public client on `host-b` behind its own port-restricted NAT. Everything runs as `sluice run`
 * with a config file, as a user would.
 */

const TOKEN = 'lab-token-0123456789abcdef';
const KEEPALIVE_MS = 300;

const gatewayYaml = (stateDir: string) => `
gateway:
  listen: ${PUB_IP}:7000
  stateDir: ${stateDir}
  keepaliveInterval: ${KEEPALIVE_MS}ms
  resumeGrace: 10s
  agents:
    home: { token: "${TOKEN}" }
  ports: 20000-20100
  services:
    udp: { rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }
log: { level: info }
accessLog: { output: "off" }
lifecycle: { drainTimeout: 1s }
`;

const agentYaml = (fingerprint: string, dataConnections: number, trunks: number, token = TOKEN) => `
agent:
  name: home
  gateway: ${PUB_IP}:7000
  token: "${token}"
  fingerprint: ${fingerprint}
  reconnect: { initial: 200ms, max: 2s }
  dataConnections: ${dataConnections}
  trunks: ${trunks}
  expose:
    u: { local: 127.0.0.1:5000, remote: udp://0.0.0.0:20001 }
    t: { local: 127.0.0.1:5000, remote: tcp://0.0.0.0:20002 }
log: { level: info }
accessLog: { output: "off" }
lifecycle: { drainTimeout: 1s }
`;

interface ClientResult {
  received: number;
  sent: number;
  lost: number[];
  tcp: string | null;
}

async function client(lab: Lab, count: number, gapMs: number, tcp = true): Promise<{ p: LabProcess; result: Promise<ClientResult> }> {
  const p = lab.start('host-b', ['node', '-e', CLIENT, PUB_IP, '20001', tcp ? '20002' : '0', String(count), String(gapMs)]);
  const result = p.waitJson((j) => j.result === true, 'client result', count * gapMs + 10_000) as Promise<unknown> as Promise<ClientResult>;
  return { p, result };
}

/** Longest run of consecutive lost sequence numbers. */
function longestGap(lost: number[]): number {
  let best = 0;
  let run = 0;
  for (let i = 0; i < lost.length; i++) {
    run = i > 0 && lost[i] === lost[i - 1]! + 1 ? run + 1 : 1;
    best = Math.max(best, run);
  }
  return best;
}

const msg = (text: string) => (j: Record<string, unknown>) => j.msg === text;

// The pid keeps two concurrent runs of this file (two developers' `npm test`) out of each other's labs.
// Trunks on (the default, with data connections 8 behind them), trunks off with data connections
// on, and both off: after the flush (while the trunk or the data connections are idle), the TCP
// echo must come back either way, on a trunk or data connection that proved itself alive (READY),
// or multiplexed when it did not.
for (const [natA, dataConns, trunks, prefix] of [
  ['port-restricted', 8, 1, `sx${process.pid}a`],
  ['symmetric', 8, 1, `sx${process.pid}b`],
  ['port-restricted', 8, 0, `sx${process.pid}c`],
  ['port-restricted', 0, 0, `sx${process.pid}d`],
] as const) {
  test(`exposure through a ${natA} NAT (trunks ${trunks}, data connections ${dataConns}): UDP and TCP echo, NAT flush, forged keepalive, wrong token`, { timeout: 120_000 }, async (t) => {
    if (!labAvailable(t)) return;
    const lab = new Lab(prefix);
    t.after(() => lab.down());
    lab.up(natA, 'port-restricted');

    const gw = lab.start('pub', ['node', MAIN, 'run', '--config', lab.file('gw.yaml', gatewayYaml(`${lab.dir}/gw-state`))]);
    const started = await gw.waitJson((j) => typeof j.fingerprint === 'string', 'gateway fingerprint');
    assert.match(String(started.msg), /generated a certificate; pin it on agents with fingerprint: sha256:[0-9a-f]{64}/);
    const echo = lab.start('host-a', ['node', '-e', ECHO_SERVICE, '5000']);
    await echo.waitJson((j) => j.ready === true, 'echo service');
    const agent = lab.start('host-a', ['node', MAIN, 'run', '--config', lab.file('agent.yaml', agentYaml(String(started.fingerprint), dataConns, trunks))]);
    await agent.waitJson(msg('agent: datagrams go over UDP'), 'agent UDP path');
    await gw.waitJson((j) => gw.json.filter(msg('gateway: service published')).length >= 2, 'both services published');

    // 1. UDP echo (every datagram, 100/s) and TCP echo with half-close.
    const first = await (await client(lab, 200, 10)).result;
    assert.equal(first.received, 200, `lost ${first.lost.length}: ${first.lost.slice(0, 20)}`);
    assert.equal(first.tcp, 'tcp echo through the exposure');

    // 2. The agent's NAT mapping is flushed mid-flow; the flow recovers within three keepalive intervals.
    const gapMs = 20;
    const flow = await client(lab, 150, gapMs, false);
    await flow.p.waitJson((j) => typeof j.started === 'number', 'flow started');
    await new Promise((r) => setTimeout(r, 1000));
    lab.flush('nat-a');
    const flushed = await flow.result;
    const outage = longestGap(flushed.lost) * gapMs;
    t.diagnostic(`${natA}: NAT flush cost ${flushed.lost.length} datagrams, longest outage ${outage}ms (limit ${3 * KEEPALIVE_MS}ms)`);
    assert.ok(outage <= 3 * KEEPALIVE_MS, `outage of ${outage}ms (lost ${flushed.lost}) exceeds three keepalive intervals`);
    assert.ok(flushed.received >= 150 - (3 * KEEPALIVE_MS) / gapMs, `received ${flushed.received} of 150`);
    assert.ok(!flushed.lost.some((i) => i > 140), 'the end of the flow was delivered');

    // 3. Forged keepalives with the agent's key id from host-b never move the agent's address.
    const up = gw.json.filter(msg('gateway: agent connected')).at(-1)!;
    const during = await client(lab, 100, 20, false);
    const forger = lab.start('host-b', ['node', '-e', FORGER, PUB_IP, '7000', String(up.keyId), '50']);
    await forger.waitJson((j) => j.forged === 50, 'forged keepalives sent');
    const forged = await during.result;
    assert.equal(forged.received, 100, `lost ${forged.lost} while forged keepalives arrived`);

    // 4. A wrong token is refused, with a clear error on both sides.
    const bad = lab.start('host-a', ['node', MAIN, 'run', '--config', lab.file('bad.yaml', agentYaml(String(started.fingerprint), dataConns, trunks, 'wrong-token-0123456789abcdef'))]);
    await bad.waitJson((j) => j.reason === 'wrong-token', 'the bad agent hears wrong-token');
    await gw.waitJson((j) => j.reason === 'wrong-token' && j.msg === 'gateway: refused an agent connection: the token for agent "home" is wrong', 'the gateway logs wrong-token');
    await bad.stop();

    // The good flow still works after all this.
    const last = await (await client(lab, 50, 10)).result;
    assert.equal(last.received, 50);
    assert.equal(last.tcp, 'tcp echo through the exposure');

    await agent.stop();
    await gw.stop();
    const stopped = gw.json.find(msg('gateway: stopped'));
    const counters = stopped?.counters as
      | {
          datagramRejected: Record<string, number>; authRefused: Record<string, number>; agentAddressMoves: number; dataConnStreams: number; dataConnDead: Record<string, number>;
          trunkStreams: number; trunkFallbacks: number; trunkNoReady: number;
        }
      | undefined;
    assert.ok(counters, 'gateway counters logged at stop');
    if (trunks > 0) {
      // The first echo rode the trunk; the last one too, or (the flush killed the idle trunk) fell back after its missing READY.
      assert.ok(counters.trunkStreams >= 1, `the first TCP echo rode the trunk (${counters.trunkStreams})`);
      assert.ok(counters.trunkStreams + counters.trunkNoReady + counters.trunkFallbacks >= 2, 'both TCP echoes were opened on a trunk');
      assert.equal(counters.dataConnStreams, 0, 'no stream needed a data connection');
    } else if (dataConns > 0) assert.ok(counters.dataConnStreams >= 2, `the TCP echoes rode data connections (${counters.dataConnStreams})`);
    else assert.equal(counters.dataConnStreams + counters.trunkStreams, 0);
    t.diagnostic(`${natA}: ${counters.trunkStreams} streams on trunks (fell back: ${counters.trunkFallbacks} gone, ${counters.trunkNoReady} no READY), ${counters.dataConnStreams} on data connections, found dead: ${JSON.stringify(counters.dataConnDead)}`);
    assert.ok(counters.datagramRejected['auth-failed']! >= 50, 'every forged keepalive was refused by the AEAD');
    assert.ok(counters.authRefused['wrong-token']! >= 1);
    t.diagnostic(`${natA}: agent address moves ${counters.agentAddressMoves}, forged keepalives refused ${counters.datagramRejected['auth-failed']}`);
    if (natA === 'symmetric') assert.ok(counters.agentAddressMoves >= 1, 'the flush gave the agent a new public port');
  });
}

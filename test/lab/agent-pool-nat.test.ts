import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Lab, MAIN, PUB_IP, labAvailable } from './expose-lab.js';

/**
 * An agent pool through real NATs (../shared/lab): the gateway on `pub`, agent `a` on host-a
 * behind a port-restricted NAT, agent `b` on host-b behind a symmetric one, both in group `ha`
 * on one public UDP port. A client on `pub` sends a steady flow; the NAT of the member serving
 * it is blackholed (every forwarded packet dropped in that router's namespace). The gateway
 * notices the lost control connection after three keepalive intervals without PONG and moves
 * the session to the other member: the outage must stay within that bound (plus one interval for
 * the ping timer's phase and a margin for this shared machine).
 */

const KEEPALIVE_MS = 300;
const GROUP_KEY = 'lab-group-key-0123456789';
const tokenOf = (name: string) => `lab-token-of-${name}-0123456789`;

const gatewayYaml = (stateDir: string) => `
gateway:
  listen: ${PUB_IP}:7000
  stateDir: ${stateDir}
  keepaliveInterval: ${KEEPALIVE_MS}ms
  resumeGrace: 10s
  agents:
    a: { token: "${tokenOf('a')}" }
    b: { token: "${tokenOf('b')}" }
  ports: 20000-20100
  groups:
    ha: { agents: [a, b], key: "${GROUP_KEY}" }
  services:
    udp: { rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }
log: { level: info }
accessLog: { output: "off" }
lifecycle: { drainTimeout: 1s }
`;

const agentYaml = (name: string, fingerprint: string) => `
agent:
  name: ${name}
  gateway: ${PUB_IP}:7000
  token: "${tokenOf(name)}"
  fingerprint: ${fingerprint}
  reconnect: { initial: 200ms, max: 2s }
  expose:
    u: { local: 127.0.0.1:5000, remote: udp://0.0.0.0:20001, group: ha, groupKey: "${GROUP_KEY}" }
log: { level: info }
accessLog: { output: "off" }
lifecycle: { drainTimeout: 1s }
`;

/** A UDP service that answers with the datagram and `:` its member id. For `node -e`. */
const NAMED_ECHO = `
const dgram = require('node:dgram'); const [port, id] = process.argv.slice(1);
const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(Buffer.concat([m, Buffer.from(':' + id)]), r.port, r.address));
u.bind(Number(port), '127.0.0.1', () => console.log(JSON.stringify({ ready: true })));
`;

/** One UDP session (one source port): seq datagrams at a fixed gap; prints each reply's member as it comes, then a result. */
const FLOW = `
const dgram = require('node:dgram'); const [host, port, count, gapMs] = process.argv.slice(1); const n = Number(count);
const got = new Map(); const s = dgram.createSocket('udp4');
s.on('message', (m) => { const p = m.toString().split(':'); const i = Number(p[1]); const id = p[p.length - 1];
  if (!got.has(i)) { got.set(i, id); console.log(JSON.stringify({ reply: i, id })); } });
s.bind(0, () => { let i = 0; const tick = () => { if (i >= n) return setTimeout(done, 1500);
  s.send(Buffer.from('seq:' + i + ':x'), Number(port), host); i++; setTimeout(tick, Number(gapMs)); }; tick(); });
function done() { s.close(); const lost = []; const ids = [];
  for (let k = 0; k < n; k++) { if (!got.has(k)) lost.push(k); ids.push(got.get(k) ?? '-'); }
  console.log(JSON.stringify({ result: true, sent: n, received: got.size, lost, ids: ids.join('') })); process.exit(0); }
`;

test('agent pool through two NATs: one NAT blackholed, the UDP session moves to the other agent within the keepalive bound', { timeout: 120_000 }, async (t) => {
  if (!labAvailable(t)) return;
  const lab = new Lab(`sap${process.pid}`);
  t.after(() => lab.down());
  lab.up('port-restricted', 'symmetric');

  const gw = lab.start('pub', ['node', MAIN, 'run', '--config', lab.file('gw.yaml', gatewayYaml(`${lab.dir}/gw-state`))]);
  const started = await gw.waitJson((j) => typeof j.fingerprint === 'string', 'gateway fingerprint');
  const agents: Record<string, ReturnType<Lab['start']>> = {};
  for (const [name, host] of [['a', 'host-a'], ['b', 'host-b']] as const) {
    const echo = lab.start(host, ['node', '-e', NAMED_ECHO, '5000', name]);
    await echo.waitJson((j) => j.ready === true, `service of ${name}`);
    agents[name] = lab.start(host, ['node', MAIN, 'run', '--config', lab.file(`${name}.yaml`, agentYaml(name, String(started.fingerprint)))]);
    await agents[name].waitJson((j) => j.msg === 'agent: datagrams go over UDP', `agent ${name} on UDP`);
  }
  await gw.waitJson(() => gw.json.filter((j) => j.msg === 'gateway: service published').length >= 2, 'both members published');

  const gapMs = 20;
  const count = 200;
  const flow = lab.start('pub', ['node', '-e', FLOW, PUB_IP, '20001', String(count), String(gapMs)]);
  const first = await flow.waitJson((j) => typeof j.reply === 'number', 'first reply');
  const serving = String(first.id);
  const other = serving === 'a' ? 'b' : 'a';
  await new Promise((r) => setTimeout(r, 1000));
  // Blackhole the serving member's NAT: a forward chain ahead of the NAT's own rules that drops everything.
  const ns = `${lab.prefix}nat-${serving}`;
  for (const args of [['add', 'table', 'ip', 'blackhole'], ['add', 'chain', 'ip', 'blackhole', 'everything', '{ type filter hook forward priority -300; policy drop; }']]) {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, `nft ${args.join(' ')} in ${ns}: ${r.stderr}`);
  }
  const result = (await flow.waitJson((j) => j.result === true, 'flow result', count * gapMs + 15_000)) as { received: number; lost: number[]; ids: string };
  // The longest run of datagrams without a reply ('-' in ids).
  const outageMs = Math.max(0, ...(result.ids.match(/-+/g) ?? []).map((run) => run.length)) * gapMs;
  const boundMs = 4 * KEEPALIVE_MS + 600;
  t.diagnostic(`served by ${serving}, moved to ${other}; lost ${result.lost.length}, longest outage ${outageMs}ms (bound ${boundMs}ms); replies ${result.ids}`);
  assert.ok(outageMs <= boundMs, `outage of ${outageMs}ms exceeds ${boundMs}ms`);
  const tail = result.ids.slice(-40);
  assert.ok(/^[^-]*$/.test(tail) && !tail.includes(serving), `the end of the flow came from ${other}: ${tail}`);
  assert.ok(result.ids.slice(0, 20).split('').every((c) => c === serving), 'one member served the session before the blackhole');
  const down = await gw.waitJson((j) => j.msg === 'pool member down' && j.member === `${serving}/u`, 'the member transition in the ops log', 5000);
  assert.equal(down.cause, 'agent-down');
  for (const p of Object.values(agents)) await p.stop();
  await gw.stop();
});

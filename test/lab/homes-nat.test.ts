import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ECHO_SERVICE, Lab, MAIN, PUB_IP, labAvailable } from './expose-lab.js';

/**
 * An agent homed on two gateways through real NATs (../shared/lab; docs/fleet.md, "Agents on a
 * fleet"): both gateways on `pub` (198.51.100.1 and .2, one certificate), the agent on `host-a`
 * behind a symmetric NAT, a public client on `host-b` behind a port-restricted NAT. The agent's
 * first gateway is killed (SIGKILL) mid-stream; the client moves to the second.
 */

const TOKEN = 'lab-token-0123456789abcdef';
const PUB_IP2 = '198.51.100.2';
/** One public UDP port per gateway: the agent asks for port 0, each gateway's range has one port. */
const PORTS = [20001, 20011];

const gatewayYaml = (ip: string, port: number, stateDir: string) => `
gateway:
  listen: ${ip}:7000
  stateDir: ${stateDir}
  keepaliveInterval: 300ms
  agents:
    home: { token: "${TOKEN}" }
  ports: ${port}-${port}
  services:
    udp: { rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }
log: { level: info }
accessLog: { output: "off" }
lifecycle: { drainTimeout: 1s }
`;

const agentYaml = (fingerprint: string) => `
agent:
  name: home
  gateways: [${PUB_IP}:7000, ${PUB_IP2}:7000]
  token: "${TOKEN}"
  fingerprint: ${fingerprint}
  reconnect: { initial: 200ms, max: 2s }
  expose:
    u: { local: 127.0.0.1:5000, remote: udp://0.0.0.0:0 }
log: { level: info }
accessLog: { output: "off" }
lifecycle: { drainTimeout: 1s }
`;

/**
 * The public client: sequence-numbered datagrams every `gap` ms to the first gateway; after
 * `quiet` ms without an answer it moves to the second. Prints {answer} lines and a {result}.
 */
const MOVER = `
const dgram = require('node:dgram');
const [h1, p1, h2, p2, count, gap, quiet] = process.argv.slice(1);
const targets = [[h1, Number(p1)], [h2, Number(p2)]];
let via = 0, lastAnswer = 0, movedAt = null, firstOnSecond = null, i = 0;
const answers = [0, 0];
const s = dgram.createSocket('udp4');
s.on('message', () => {
  lastAnswer = Date.now(); answers[via]++;
  if (via === 1 && firstOnSecond === null) firstOnSecond = lastAnswer;
  if (answers[via] === 1 || answers[via] === 20) console.log(JSON.stringify({ answer: true, via, n: answers[via], at: lastAnswer }));
});
s.bind(0, () => {
  const tick = () => {
    if (i >= Number(count)) return setTimeout(done, 500);
    if (via === 0 && lastAnswer > 0 && Date.now() - lastAnswer > Number(quiet)) { via = 1; movedAt = Date.now(); console.log(JSON.stringify({ moved: movedAt })); }
    s.send(Buffer.from('seq:' + i++), targets[via][1], targets[via][0]);
    setTimeout(tick, Number(gap));
  };
  tick();
});
function done() { s.close(); console.log(JSON.stringify({ result: true, answers, movedAt, firstOnSecond })); process.exit(0); }
`;

test('an agent behind a symmetric NAT homed on two gateways: kill -9 the first, the client stream continues through the second within 2 s', { timeout: 120_000 }, async (t) => {
  if (!labAvailable(t)) return;
  const lab = new Lab(`sh${process.pid}`);
  t.after(() => lab.down());
  lab.up('symmetric', 'port-restricted');
  // Two gateways in one namespace: a public listener bound to 0.0.0.0 answers from the primary
  // address (.1) whichever address the client sent to, which the client's NAT drops. A second
  // machine answers from its own address; this stateless rewrite (no conntrack, so no NAT port
  // games) makes gateway 2's public port in pub behave like one.
  lab.natlab('exec', 'pub', 'nft', [
    'add table ip homing',
    'add chain ip homing out { type filter hook output priority -300; }',
    `add rule ip homing out udp sport ${PORTS[1]} notrack ip saddr set ${PUB_IP2}`,
    'add chain ip homing pre { type filter hook prerouting priority -300; }',
    `add rule ip homing pre udp dport ${PORTS[1]} notrack`,
  ].join('; '));

  const state = `${lab.dir}/gw-state`;
  const gw1 = lab.start('pub', ['node', MAIN, 'run', '--config', lab.file('gw1.yaml', gatewayYaml(PUB_IP, PORTS[0]!, state))]);
  const started = await gw1.waitJson((j) => typeof j.fingerprint === 'string', 'gateway fingerprint');
  // The second gateway loads the first one's certificate from the shared state dir: one fleet certificate.
  const gw2 = lab.start('pub', ['node', MAIN, 'run', '--config', lab.file('gw2.yaml', gatewayYaml(PUB_IP2, PORTS[1]!, state))]);
  const echo = lab.start('host-a', ['node', '-e', ECHO_SERVICE, '5000']);
  await echo.waitJson((j) => j.ready === true, 'echo service');
  const agent = lab.start('host-a', ['node', MAIN, 'run', '--config', lab.file('agent.yaml', agentYaml(String(started.fingerprint)))]);
  const published = (j: Record<string, unknown>) => j.msg === 'gateway: service published';
  await gw1.waitJson(published, 'published on gateway 1', 20_000);
  await gw2.waitJson(published, 'published on gateway 2', 20_000);

  const gapMs = 20;
  const client = lab.start('host-b', ['node', '-e', MOVER, PUB_IP, String(PORTS[0]), PUB_IP2, String(PORTS[1]), '250', String(gapMs), '300']);
  await client.waitJson((j) => j.answer === true && j.via === 0 && j.n === 20, 'a stream through gateway 1');
  const killedAt = Date.now();
  gw1.child.kill('SIGKILL');
  const result = await client.waitJson((j) => j.result === true, 'client result', 30_000);
  const { answers, movedAt, firstOnSecond } = result as { answers: number[]; movedAt: number | null; firstOnSecond: number | null };
  assert.ok(movedAt !== null && firstOnSecond !== null, `the client moved and got answers through gateway 2: ${JSON.stringify(result)}\ngw2:\n${gw2.lines.slice(-15).join('\n')}\nagent:\n${agent.lines.slice(-15).join('\n')}`);
  const afterKill = firstOnSecond - killedAt;
  t.diagnostic(`answers via gw1 ${answers[0]}, via gw2 ${answers[1]}; first answer through gw2 ${firstOnSecond - movedAt} ms after moving, ${afterKill} ms after kill -9`);
  assert.ok(afterKill < 2000, `the stream continued through gateway 2 ${afterKill} ms after the first was killed`);
  // Every datagram after the move (but the last few in flight at the end) was answered.
  assert.ok(answers[1]! >= 250 - Math.ceil((movedAt - killedAt) / gapMs) - answers[0]! - 5, `answers through gateway 2: ${answers[1]}`);
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { freePort, waitFor } from '../helpers/net.js';
import { published, startAgent, startGateway } from './expose-helpers.js';
import {
  GROUP_KEY, namedTcpService, namedUdpService, poolAgentConfig, poolGatewayConfig, tcpEcho, tcpGreeting, udpClientFrom,
} from './agent-pool-helpers.js';

const GROUPS = `    ha: { agents: [a, b], key: "${GROUP_KEY}" }`;

async function twoAgentPool(t: TestContext, health = '') {
  const gw = await startGateway(t, poolGatewayConfig(t, ['a', 'b', 'c'], GROUPS));
  const [udpPort, tcpPort] = [await freePort('udp'), await freePort('tcp')];
  const services = { a: { udp: await namedUdpService(t, 'a'), tcp: await namedTcpService(t, 'a') }, b: { udp: await namedUdpService(t, 'b'), tcp: await namedTcpService(t, 'b') } };
  const configOf = (name: 'a' | 'b') =>
    poolAgentConfig(gw, name, `    u: { local: 127.0.0.1:${services[name].udp.port}, remote: udp://127.0.0.1:${udpPort}, group: ha, groupKey: "${GROUP_KEY}"${health} }
    t: { local: 127.0.0.1:${services[name].tcp.port}, remote: tcp://127.0.0.1:${tcpPort}, group: ha, groupKey: "${GROUP_KEY}" }`);
  const a = await startAgent(t, configOf('a'));
  const b = await startAgent(t, configOf('b'));
  await published(a.agent);
  await published(b.agent);
  const pools = () => Object.fromEntries(gw.gateway.published().filter((p) => p.pool).map((p) => [p.route.name, p.pool!.view()]));
  const stateOf = (route: string, member: string) => pools()[route]?.members.find((m) => m.key === member)?.health;
  return { gw, a, b, udpPort, tcpPort, services, configOf, pools, stateOf };
}

/** Clients from 127.0.0.10.. (source hash keys on the client address) and the member each reached. */
async function udpClients(t: TestContext, port: number, n: number, from = 10) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const c = await udpClientFrom(t, `127.0.0.${from + i}`);
    const reply = await c.ask(port, `hello-${i}`);
    out.push({ c, member: reply.split(':')[0]!, address: `127.0.0.${from + i}` });
  }
  return out;
}

test('agent pool: two agents share one UDP and one TCP listener; traffic is balanced over both; stop one: UDP moves, TCP goes on; start it again: it rejoins', async (t) => {
  const p = await twoAgentPool(t);
  // One public listener per remote, listed once, with both members up.
  const views = p.pools();
  assert.deepEqual(Object.keys(views).sort(), [`ha/tcp:${p.tcpPort}`, `ha/udp:${p.udpPort}`]);
  assert.deepEqual(views[`ha/udp:${p.udpPort}`]!.members.map((m) => [m.key, m.health]).sort(), [['a/u', 'up'], ['b/u', 'up']]);
  assert.deepEqual(views[`ha/tcp:${p.tcpPort}`]!.members.map((m) => [m.key, m.health]).sort(), [['a/t', 'up'], ['b/t', 'up']]);
  assert.equal(views[`ha/udp:${p.udpPort}`]!.balance, 'source-hash');
  assert.equal(views[`ha/tcp:${p.tcpPort}`]!.balance, 'least-conn');

  // UDP: 24 client addresses spread over both members by source hash.
  const clients = await udpClients(t, p.udpPort, 24);
  const onA = clients.filter((c) => c.member === 'a');
  const onB = clients.filter((c) => c.member === 'b');
  assert.ok(onA.length >= 3 && onB.length >= 3, `a ${onA.length}, b ${onB.length}`);
  // TCP: least-conn, 8 open connections, 4 on each.
  const conns = [];
  for (let i = 0; i < 8; i++) conns.push(await tcpGreeting(t, p.tcpPort));
  assert.deepEqual([conns.filter((c) => c.id === 'a').length, conns.filter((c) => c.id === 'b').length], [4, 4]);

  // Stop agent a. Its UDP sessions move to b at once (same sessions: the clients keep their sockets).
  const tcpOnB = conns.find((c) => c.id === 'b')!;
  const tcpOnA = conns.find((c) => c.id === 'a')!;
  const aClosed = once(tcpOnA.socket, 'close');
  await p.a.agent.close();
  await waitFor(() => p.stateOf(`ha/udp:${p.udpPort}`, 'a/u') === undefined || p.stateOf(`ha/udp:${p.udpPort}`, 'a/u') === 'down', 'a/u down or gone');
  for (const c of onA) assert.equal(await c.c.ask(p.udpPort, 'after-stop'), 'b:after-stop', `${c.address} moved to b`);
  for (const c of onB) assert.equal(await c.c.ask(p.udpPort, 'after-stop'), 'b:after-stop');
  // TCP: the connection on b goes on; the one on a ends with its agent; new ones all go to b.
  assert.match(await tcpEcho(tcpOnB.socket, 'still-here'), /still-here/);
  await aClosed;
  for (let i = 0; i < 3; i++) assert.equal((await tcpGreeting(t, p.tcpPort)).id, 'b');
  assert.deepEqual(p.pools()[`ha/udp:${p.udpPort}`]!.members.map((m) => m.key), ['b/u']);

  // Start a again: it rejoins; new sessions reach it (the addresses that hashed to it do again, new TCP connections balance).
  const a2 = await startAgent(t, p.configOf('a'));
  await published(a2.agent);
  assert.equal(p.stateOf(`ha/udp:${p.udpPort}`, 'a/u'), 'up');
  const again = await udpClients(t, p.udpPort, onA.length, 10);
  const back = again.filter((c) => onA.some((o) => o.address === c.address));
  assert.ok(back.length > 0 && back.every((c) => c.member === 'a'), JSON.stringify(again.map((c) => [c.address, c.member])));
  const fresh = [];
  for (let i = 0; i < 4; i++) fresh.push((await tcpGreeting(t, p.tcpPort)).id);
  assert.ok(fresh.includes('a'), `new connections after the rejoin: ${fresh.join(',')}`);
});

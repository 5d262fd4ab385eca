import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { freePort, waitFor } from '../helpers/net.js';
import { ServedRoutes } from '../../src/ops/served-routes.js';
import { RouteTraffic } from '../../src/admin/route-traffic.js';
import { agentStatusView } from '../../src/ops/agent-view.js';
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

test('agent pool: an agent not in the group, a wrong key, and a single service on the pool port are refused, naming service and reason; the pool is listed in /api/routes with its members', async (t) => {
  const p = await twoAgentPool(t);
  const svc = await namedUdpService(t, 'c');
  const refusedBy = async (expose: string) => {
    const c = await startAgent(t, poolAgentConfig(p.gw, 'c', expose));
    await waitFor(() => c.rec.of('agent-publish-refused').length > 0, 'refusal');
    await c.agent.close();
    return c.rec.of('agent-publish-refused')[0]!;
  };
  // c is a configured agent, but not one of the group's.
  const notAllowed = await refusedBy(`    x: { local: 127.0.0.1:${svc.port}, remote: udp://127.0.0.1:${p.udpPort}, group: ha, groupKey: "${GROUP_KEY}" }`);
  assert.deepEqual([notAllowed.service, notAllowed.code], ['x', 'not-allowed']);
  assert.match(notAllowed.message, /agent "c" may not join group "ha"/);
  // A group that does not exist, and a single service on a pool's port.
  const unknown = await refusedBy(`    y: { local: 127.0.0.1:${svc.port}, remote: udp://127.0.0.1:${p.udpPort}, group: other, groupKey: "${GROUP_KEY}" }`);
  assert.deepEqual([unknown.service, unknown.code], ['y', 'not-allowed']);
  const single = await refusedBy(`    z: { local: 127.0.0.1:${svc.port}, remote: udp://127.0.0.1:${p.udpPort} }`);
  assert.deepEqual([single.service, single.code], ['z', 'port-in-use']);
  assert.match(single.message, /pool of group "ha"/);
  // b again, with the wrong key (as a second agent process of b would be refused at auth, restart b with a bad key).
  await p.b.agent.close();
  const wrong = await startAgent(t, poolAgentConfig(p.gw, 'b', `    u: { local: 127.0.0.1:${p.services.b.udp.port}, remote: udp://127.0.0.1:${p.udpPort}, group: ha, groupKey: "not-the-group-key-0000" }`));
  await waitFor(() => wrong.rec.of('agent-publish-refused').length > 0, 'wrong key refused');
  const r = wrong.rec.of('agent-publish-refused')[0]!;
  assert.deepEqual([r.service, r.code], ['u', 'not-allowed']);
  assert.match(r.message, /wrong key for group "ha"/);
  assert.equal(p.gw.gateway.counters.publishRefused['not-allowed'], 3);
  assert.equal(p.gw.gateway.counters.publishRefused['port-in-use'], 1);
  // The pool kept its one member: a's. Its route is listed once, with the pool and its members.
  const views = new ServedRoutes({ routes: () => [], gateway: () => p.gw.gateway, agent: () => undefined }).views(new RouteTraffic(() => []));
  const udp = views.find((v) => v.name === `ha/udp:${p.udpPort}`)!;
  assert.equal(udp.kind, 'published');
  assert.deepEqual(udp.pool!.members.map((m) => [m.key, m.health]), [['a/u', 'up']]);
  assert.equal(views.filter((v) => v.name.startsWith('a/') || v.name.startsWith('b/')).length, 0, 'members are not listed as routes of their own');
  const c = await udpClientFrom(t, '127.0.0.9');
  assert.equal(await c.ask(p.udpPort, 'x'), 'a:x');
});

test('agent pool: the agent reports its local check; a member whose service fails it is taken down and its UDP sessions move; it comes back after rise checks', async (t) => {
  const p = await twoAgentPool(t, ', health: { udp: { send: "probe", interval: 100ms, timeout: 80ms, rise: 2, fall: 2 } }');
  const route = `ha/udp:${p.udpPort}`;
  await waitFor(() => p.stateOf(route, 'a/u') === 'up' && p.stateOf(route, 'b/u') === 'up', 'both members reported up');
  const clients = await udpClients(t, p.udpPort, 16, 40);
  const onA = clients.filter((c) => c.member === 'a');
  assert.ok(onA.length > 0 && onA.length < 16, `a has ${onA.length} of 16`);
  // a's local service goes away (ICMP port unreachable): the agent reports down, the gateway moves a's sessions to b.
  const port = p.services.a.udp.port;
  p.services.a.udp.close();
  await waitFor(() => p.stateOf(route, 'a/u') === 'down', 'a/u down by its agent report', 5000);
  const down = p.gw.rec.of('pool-member').filter((e) => e.member === 'a/u' && e.to === 'down').at(-1)!;
  assert.match(down.cause, /agent-check-down: port unreachable/);
  for (const c of onA) assert.equal(await c.c.ask(p.udpPort, 'moved'), 'b:moved');
  // The agent's own status shows the group and its verdict.
  const view = agentStatusView(p.a.agent).services.find((s) => s.name === 'u')!;
  assert.deepEqual([view.group, view.localHealth?.up, view.localHealth?.message], ['ha', false, 'port unreachable (ICMP)']);
  assert.equal(agentStatusView(p.a.agent).services.find((s) => s.name === 't')!.localHealth, undefined, 'no health: block, no localHealth');
  // The service comes back on its port: up after two passing checks; new sessions reach it again.
  await namedUdpService(t, 'a', port);
  await waitFor(() => p.stateOf(route, 'a/u') === 'up', 'a/u up again', 5000);
  const again = await udpClients(t, p.udpPort, 16, 60);
  assert.ok(again.some((c) => c.member === 'a'), 'new sessions reach a again');
});

test('agent pool: a control connection outage takes the member down (its UDP sessions move); the resumed agent publishes again and is up', async (t) => {
  const p = await twoAgentPool(t);
  const route = `ha/udp:${p.udpPort}`;
  const clients = await udpClients(t, p.udpPort, 16, 80);
  const onA = clients.filter((c) => c.member === 'a');
  assert.ok(onA.length > 0, 'some clients on a');
  const downs = () => p.gw.rec.of('pool-member').filter((e) => e.member === 'a/u' && e.to === 'down').length;
  p.a.agent.reconnectNow();
  await waitFor(() => downs() === 1, 'a/u down while its agent is away');
  await waitFor(() => p.gw.rec.of('pool-member').some((e) => e.member === 'a/u' && e.to === 'up' && e.cause === 'published-again'), 'a/u up after the resume');
  assert.equal(p.a.agent.counters.resumed, 1, 'the gateway resumed the agent');
  assert.equal(p.stateOf(route, 'a/u'), 'up');
  // The sessions that moved stay on b; new sessions of a's addresses reach a again.
  for (const c of onA) assert.equal(await c.c.ask(p.udpPort, 'stay'), 'b:stay');
  const again = await udpClients(t, p.udpPort, 16, 80);
  assert.ok(again.filter((c) => onA.some((o) => o.address === c.address)).every((c) => c.member === 'a'));
});

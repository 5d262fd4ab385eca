import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { published, startAgent, startGateway } from './expose-helpers.js';
import { GROUP_KEY, poolAgentConfig, tokenOf } from './agent-pool-helpers.js';
import { initialFor, recorder } from './expose-names-helpers.js';
import net from 'node:net';
import { tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { clientHelloMessage, inRecords } from '../protocol/tls/hello-builder.js';
import { havePeer } from '../helpers/peers.js';
import { run, subjectSeen, tlsServer } from '../helpers/tls-servers.js';
import { browseOverQuic, nameInInitials, stopGroup } from '../helpers/chromium-quic.js';

/* Agent pools by name (docs/sni.md, "Pools by name"): agents of one group share a tls:// or quic:// name. */

const OTHER_KEY = 'other-key-0123456789abcdef';

/** A gateway with shared TLS and QUIC ports, agents home, office, stranger and solo allowed app.test, group web (home, office) and group other (stranger). */
function poolNamesGateway(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pool-names-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const agent = (a: string) => `    ${a}: { token: "${tokenOf(a)}", names: [app.test] }`;
  const yaml = [
    'gateway:', '  listen: 127.0.0.1:0', `  stateDir: ${dir}`, '  keepaliveInterval: 1s', '  ports: 1024-65535',
    '  names: { tls: "127.0.0.1:0", quic: "127.0.0.1:0" }',
    '  agents:', agent('home'), agent('office'), agent('stranger'), agent('solo'),
    '  groups:', `    web: { agents: [home, office], key: "${GROUP_KEY}" }`, `    other: { agents: [stranger], key: "${OTHER_KEY}" }`,
  ].join('\n');
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config.gateway!;
}

const member = (local: number, remote: string, group = 'web', key = GROUP_KEY) => `    site: { local: "127.0.0.1:${local}", remote: "${remote}", group: ${group}, groupKey: "${key}" }`;

test('pool by name (TLS): two agents\' openssl s_server instances serve tls://app.test behind one gateway port; one leaves: new connections go to the other; the last one leaving frees the name', async (t) => {
  if (!havePeer(t, 'openssl', 'openssl') || !havePeer(t, 'curl', 'curl')) return;
  const servers = { home: await tlsServer(t, 'member-home', 'home-server\n'), office: await tlsServer(t, 'member-office', 'office-server\n') };
  const gw = await startGateway(t, poolNamesGateway(t));
  const home = await startAgent(t, poolAgentConfig(gw, 'home', member(servers.home, 'tls://app.test')));
  const office = await startAgent(t, poolAgentConfig(gw, 'office', member(servers.office, 'tls://app.test')));
  const port = (await published(home.agent)).site!;
  assert.equal((await published(office.agent)).site, port, 'one shared port');
  const pools = gw.gateway.published().filter((p) => p.pool);
  assert.deepEqual(pools.map((p) => [p.route.name, p.pool!.view().balance, p.pool!.view().members.map((m) => [m.key, m.health]).sort()]), [
    ['web/tls://app.test', 'least-conn', [['home/site', 'up'], ['office/site', 'up']]],
  ]);

  // least-conn: ties go round the members, so successive clients reach both servers.
  const sClient = () => run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'app.test']);
  const curl = () => run('curl', ['-sk', '--max-time', '10', '--resolve', `app.test:${port}:127.0.0.1`, `https://app.test:${port}/id.txt`]);
  const subjects = [subjectSeen(await sClient()), subjectSeen(await sClient()), subjectSeen(await sClient()), subjectSeen(await sClient())];
  assert.deepEqual([...new Set(subjects)].sort(), ['member-home', 'member-office'], `subjects ${subjects.join(' ')}`);
  const bodies = [(await curl()).trim(), (await curl()).trim()];
  assert.deepEqual(bodies.sort(), ['home-server', 'office-server']);

  // home leaves: its member goes, every new connection reaches office.
  await home.agent.close();
  await waitFor(() => gw.gateway.published().find((p) => p.pool)?.pool!.view().members.length === 1, 'home left the pool');
  for (let i = 0; i < 3; i++) assert.equal(subjectSeen(await sClient()), 'member-office');
  assert.equal((await curl()).trim(), 'office-server');

  // office leaves too: the name is free; a single service takes it.
  await office.agent.close();
  await waitFor(() => gw.gateway.published().length === 0, 'pool closed');
  assert.ok(gw.rec.of('route-down').some((e) => e.route === 'web/tls://app.test'));
  const solo = await startAgent(t, poolAgentConfig(gw, 'solo', `    site: { local: "127.0.0.1:${servers.home}", remote: "tls://app.test" }`));
  const again = (await published(solo.agent)).site!; // the shared port was closed with its last name, and bound again (port 0)
  assert.equal(subjectSeen(await run('openssl', ['s_client', '-connect', `127.0.0.1:${again}`, '-servername', 'app.test'])), 'member-home');
});

test('pool by name: a member of another group, a single service on a pooled name, and a pool member on a name a single service holds are refused with name-in-use', async (t) => {
  const local = await tcpServer(t);
  const gw = await startGateway(t, poolNamesGateway(t));
  const home = await startAgent(t, poolAgentConfig(gw, 'home', member(local.port, 'tls://app.test')));
  await published(home.agent);
  const stranger = await startAgent(t, poolAgentConfig(gw, 'stranger', member(local.port, 'tls://app.test', 'other', OTHER_KEY)));
  const solo = await startAgent(t, poolAgentConfig(gw, 'solo', [
    `    lone: { local: "127.0.0.1:${local.port}", remote: "tls://app.test" }`,
    `    h3: { local: "127.0.0.1:${local.port}", remote: "quic://app.test" }`,
  ].join('\n')));
  await waitFor(() => stranger.rec.of('agent-publish-refused').length === 1 && solo.rec.of('agent-publish-refused').length === 1 && solo.rec.of('agent-published').length === 1, 'answers');
  const refused = Object.fromEntries([...stranger.rec.of('agent-publish-refused'), ...solo.rec.of('agent-publish-refused')].map((e) => [e.service, [e.code, e.message]]));
  assert.deepEqual(refused, {
    site: ['name-in-use', 'tls://app.test is the pool of group "web", not "other"'],
    lone: ['name-in-use', 'tls://app.test is the pool of group "web"; set group (and groupKey) to join it'],
  });
  // quic://app.test is another claim: the single service got it, so a pool member is refused there.
  const office = await startAgent(t, poolAgentConfig(gw, 'office', member(local.port, 'quic://app.test')));
  await waitFor(() => office.rec.of('agent-publish-refused').length === 1, 'refused');
  const [r] = office.rec.of('agent-publish-refused');
  assert.deepEqual([r!.code, r!.message], ['name-in-use', 'quic://app.test is held by agent "solo" (service h3)']);
  assert.equal(gw.gateway.counters.publishRefused['name-in-use'], 3);
  // The refused member opened nothing: only the pool of web and the single quic:// service are listed.
  assert.deepEqual(gw.gateway.published().map((p) => p.route.name).sort(), ['solo/h3', 'web/tls://app.test']);
});

/** A UDP client bound to `address`, sending raw datagrams and collecting replies. */
async function quicClient(t: TestContext, address: string) {
  const sock = dgram.createSocket('udp4');
  const inbox: string[] = [];
  sock.on('message', (m) => inbox.push(m.subarray(0, m.indexOf(':') + 1).toString()));
  sock.bind(0, address);
  await once(sock, 'listening');
  t.after(() => sock.close());
  return { sock, inbox, send: (port: number, d: Buffer | string) => sock.send(d, port, '127.0.0.1') };
}

test('pool by name (QUIC): Initials for quic://app.test from many client addresses spread over both members by source hash and each client sticks; a member leaving moves its clients and takes no new ones', async (t) => {
  const services = { home: await recorder(t, 'home:'), office: await recorder(t, 'office:') };
  const gw = await startGateway(t, poolNamesGateway(t));
  const home = await startAgent(t, poolAgentConfig(gw, 'home', member(services.home.port, 'quic://app.test')));
  const office = await startAgent(t, poolAgentConfig(gw, 'office', member(services.office.port, 'quic://app.test')));
  const port = (await published(home.agent)).site!;
  assert.equal((await published(office.agent)).site, port);
  assert.equal(gw.gateway.published().find((p) => p.pool)?.pool!.view().balance, 'source-hash');

  const clients = [];
  for (let i = 0; i < 16; i++) {
    const c = await quicClient(t, `127.0.0.${20 + i}`);
    c.send(port, initialFor('app.test', 0x40 + i));
    await waitFor(() => c.inbox.length === 1, `client ${i} answered`);
    for (let k = 0; k < 3; k++) c.send(port, `later-${k}`);
    await waitFor(() => c.inbox.length === 4, `client ${i}'s later datagrams answered`);
    assert.equal(new Set(c.inbox).size, 1, `client ${i} stuck to one member: ${c.inbox.join(' ')}`);
    clients.push({ c, member: c.inbox[0]! });
  }
  const onHome = clients.filter((c) => c.member === 'home:');
  const onOffice = clients.filter((c) => c.member === 'office:');
  assert.ok(onHome.length >= 2 && onOffice.length >= 2, `home ${onHome.length}, office ${onOffice.length}`);
  // Each member's service saw whole clients: its Initials and their later datagrams, nothing of the others.
  assert.equal(services.home.got.length, onHome.length * 4);
  assert.equal(services.office.got.length, onOffice.length * 4);

  // home leaves: its clients' next datagrams reach office (failover: move); new clients go to office only.
  const homeGot = services.home.got.length;
  await home.agent.close();
  await waitFor(() => gw.gateway.published().find((p) => p.pool)?.pool!.view().members.length === 1, 'home left the pool');
  for (const { c } of onHome) {
    c.inbox.length = 0;
    c.send(port, 'after-move');
    await waitFor(() => c.inbox.length > 0, 'moved client answered');
    assert.equal(c.inbox[0], 'office:');
  }
  for (let i = 0; i < 6; i++) {
    const c = await quicClient(t, `127.0.0.${60 + i}`);
    c.send(port, initialFor('app.test', 0x80 + i));
    await waitFor(() => c.inbox.length === 1, `new client ${i} answered`);
    assert.equal(c.inbox[0], 'office:');
  }
  assert.equal(services.home.got.length, homeGot, 'nothing reached the member that left');
});

/** A TCP service that greets each connection with `id:`; `stop()` closes it (its port then refuses), `start()` listens again on the same port. */
async function greeter(t: TestContext, id: string) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const start = async (port: number) => {
    server = net.createServer((c) => {
      sockets.add(c);
      c.on('close', () => sockets.delete(c));
      c.on('error', () => {});
      c.write(`${id}:`);
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as net.AddressInfo).port;
  };
  const port = await start(0);
  const stop = () => {
    server?.close();
    server = undefined;
    for (const c of sockets) c.destroy();
  };
  t.after(stop);
  return { port, stop, start: () => start(port) };
}

test('pool by name (TLS): a member whose agent\'s health check fails takes no new connections; it takes them again once the check passes', async (t) => {
  const services = { home: await greeter(t, 'home'), office: await greeter(t, 'office') };
  const gw = await startGateway(t, poolNamesGateway(t));
  const health = ', health: { tcp: { interval: 100ms, timeout: 80ms, rise: 1, fall: 1 } }';
  const cfg = (name: 'home' | 'office') => poolAgentConfig(gw, name, `    site: { local: "127.0.0.1:${services[name].port}", remote: "tls://app.test", group: web, groupKey: "${GROUP_KEY}"${health} }`);
  const home = await startAgent(t, cfg('home'));
  await startAgent(t, cfg('office'));
  const port = (await published(home.agent)).site!;
  const states = () => gw.gateway.published().find((p) => p.pool)?.pool!.view().members.map((m) => `${m.key} ${m.health}`).sort();
  await waitFor(() => states()?.join() === 'home/site up,office/site up', 'both members up after their first reports');
  /** A client that sends a ClientHello for app.test and reads the member's greeting. */
  const greeting = async () => {
    const c = await tcpConnect(t, port);
    c.write(inRecords(clientHelloMessage({ serverName: 'app.test' }), [50]));
    const [chunk] = (await once(c, 'data', { signal: AbortSignal.timeout(5000) })) as [Buffer];
    c.destroy();
    return chunk.toString().split(':')[0];
  };
  const both = new Set([await greeting(), await greeting(), await greeting(), await greeting()]);
  assert.deepEqual([...both].sort(), ['home', 'office']);

  // office's service goes away: its agent's check says down, the member goes down, new connections reach home only.
  services.office.stop();
  await waitFor(() => states()?.join() === 'home/site up,office/site down', 'office down by its check');
  for (let i = 0; i < 4; i++) assert.equal(await greeting(), 'home');
  assert.ok(gw.rec.of('pool-member').some((e) => e.member === 'office/site' && e.to === 'down' && e.cause.startsWith('agent-check-down')));

  // It comes back: the check passes, the member is up and takes new connections again.
  await services.office.start();
  await waitFor(() => states()?.join() === 'home/site up,office/site up', 'office up again');
  const again = [await greeting(), await greeting(), await greeting(), await greeting()];
  assert.ok(again.includes('office'), again.join(' '));
});

test('pool by name (QUIC): Chromium forced to QUIC reaches quic://app.test served by two agents; all of its Initials go to one member (source hash), complete and unchanged', async (t) => {
  if (!havePeer(t, 'chromium', 'chromium')) return;
  const services = { home: await recorder(t, 'home:'), office: await recorder(t, 'office:') };
  const gw = await startGateway(t, poolNamesGateway(t));
  const home = await startAgent(t, poolAgentConfig(gw, 'home', member(services.home.port, 'quic://app.test')));
  await startAgent(t, poolAgentConfig(gw, 'office', member(services.office.port, 'quic://app.test')));
  const port = (await published(home.agent)).site!;
  await waitFor(() => gw.gateway.published().find((p) => p.pool)?.pool!.view().members.length === 2, 'both members');
  const browser = await browseOverQuic(t, 'app.test', port);
  await waitFor(() => services.home.got.length + services.office.got.length > 0, "Chromium's Initials reached a member", 15_000);
  stopGroup(browser.pid);
  const [served, other] = services.home.got.length > 0 ? [services.home, services.office] : [services.office, services.home];
  assert.equal(other.got.length, 0, 'one client address, one member');
  assert.equal(nameInInitials(served.got), 'app.test');
  assert.ok(gw.rec.of('session-started').every((e) => e.flow.route === 'web/quic://app.test'));
});

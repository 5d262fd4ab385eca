import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import type { AgentConfig } from '../../src/config/expose-config.js';
import { decodeProxyHeader } from '../../src/protocol/proxy-protocol/index.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway, TOKEN } from './expose-helpers.js';
import { tcpConnect, tcpServer, udpClient, waitFor } from '../helpers/net.js';
import { havePeer } from '../helpers/peers.js';
import { agentStatusView } from '../../src/ops/agent-view.js';
import { browseOverQuic, nameInInitials, stopGroup } from '../helpers/chromium-quic.js';
import { dribbler, run, subjectSeen, tlsServer } from '../helpers/tls-servers.js';
import { clientHelloMessage, inRecords } from '../protocol/tls/hello-builder.js';
import { initialFor, recorder } from './expose-names-helpers.js';

/* Exposures by name on the gateway's shared TLS and QUIC ports (docs/sni.md, "Exposures by name"). */

/** A gateway with shared ports on 127.0.0.1 (port 0: bound by the first name) and agents home and office with these names policies. */
function namesGateway(policies: { home?: string[]; office?: string[] }, names = '{ tls: "127.0.0.1:0", quic: "127.0.0.1:0" }') {
  const policy = (p: string[] | undefined) => (p ? `, names: [${p.map((n) => `"${n}"`).join(', ')}]` : '');
  const yaml = [
    'gateway:', '  listen: 127.0.0.1:0', `  stateDir: ${gatewayConfig().stateDir}`, '  ports: 1024-65535', `  names: ${names}`, '  agents:',
    `    home: { token: "${TOKEN}"${policy(policies.home)} }`, `    office: { token: "${TOKEN}"${policy(policies.office)} }`,
  ].join('\n');
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config.gateway!;
}

const office = (c: AgentConfig): AgentConfig => ({ ...c, name: 'office' });

test('two agents\' TLS servers behind one gateway port: openssl s_client and curl reach each by name; an unknown name is refused; a dribbled ClientHello routes', async (t) => {
  if (!havePeer(t, 'openssl', 'openssl') || !havePeer(t, 'curl', 'curl')) return;
  const alpha = await tlsServer(t, 'alpha.test', 'alpha-server\n');
  const beta = await tlsServer(t, 'beta.test', 'beta-server\n');
  const gw = await startGateway(t, namesGateway({ home: ['alpha.test'], office: ['*.beta.test'] }));
  const home = await startAgent(t, agentConfig(gw, `    site: { local: "127.0.0.1:${alpha}", remote: "tls://alpha.test" }`));
  const other = await startAgent(t, office(agentConfig(gw, `    site: { local: "127.0.0.1:${beta}", remote: "tls://www.beta.test" }`)));
  const port = (await published(home.agent)).site!;
  assert.equal((await published(other.agent)).site, port, 'one shared port');

  const sClient = (name: string, p = port) => run('openssl', ['s_client', '-connect', `127.0.0.1:${p}`, '-servername', name]);
  assert.equal(subjectSeen(await sClient('alpha.test')), 'alpha.test');
  assert.equal(subjectSeen(await sClient('WWW.beta.test.')), 'beta.test', 'canonical: case and trailing dot');
  const curl = (name: string) => run('curl', ['-sk', '--max-time', '10', '--resolve', `${name}:${port}:127.0.0.1`, `https://${name}:${port}/id.txt`]);
  assert.equal((await curl('alpha.test')).trim(), 'alpha-server');
  assert.equal((await curl('www.beta.test')).trim(), 'beta-server');

  const unknown = await sClient('x.beta.test');
  assert.equal(subjectSeen(unknown), undefined, 'a name nobody claimed');
  await waitFor(() => gw.rec.of('session-rejected').some((e) => e.reason === 'no-route-for-name'), 'refusal recorded');
  assert.deepEqual(gw.rec.of('session-rejected').map((e) => [e.route, e.reason, e.detail]), [[`tcp://127.0.0.1:${port}`, 'no-route-for-name', 'name x.beta.test']]);

  assert.equal(subjectSeen(await sClient('www.beta.test', await dribbler(t, port))), 'beta.test', 'a ClientHello sent one byte per segment');
  const routes = gw.rec.of('session-started').map((e) => e.flow.route);
  assert.deepEqual([routes.filter((r) => r === 'home/site').length, routes.filter((r) => r === 'office/site').length], [2, 3]);
});

test('names outside an agent\'s policy, a name another agent holds, and a gateway without the shared port are refused with their reasons', async (t) => {
  const local = await tcpServer(t);
  const gw = await startGateway(t, namesGateway({ home: ['alpha.test', '*.home.test'], office: ['alpha.test'] }, '{ tls: "127.0.0.1:0" }'));
  const home = await startAgent(t, agentConfig(gw, [
    `    a: { local: "127.0.0.1:${local.port}", remote: "tls://alpha.test" }`,
    `    b: { local: "127.0.0.1:${local.port}", remote: "tls://evil.test" }`,
    `    c: { local: "127.0.0.1:${local.port}", remote: "tls://home.test" }`,
    `    d: { local: "127.0.0.1:${local.port}", remote: "tls://*.x.home.test" }`,
    `    e: { local: "127.0.0.1:${local.port}", remote: "quic://alpha.test" }`,
  ].join('\n')));
  await waitFor(() => home.rec.of('agent-publish-refused').length === 3 && home.rec.of('agent-published').length === 2, 'answers');
  const refused = Object.fromEntries(home.rec.of('agent-publish-refused').map((e) => [e.service, [e.code, e.message]]));
  assert.deepEqual(refused, {
    b: ['not-allowed', 'tls://evil.test is not among the names agent "home" may claim (alpha.test, *.home.test)'],
    c: ['not-allowed', 'tls://home.test is not among the names agent "home" may claim (alpha.test, *.home.test)'],
    e: ['not-allowed', 'this gateway serves no quic:// names (gateway.names.quic is not set)'],
  });
  const views = agentStatusView(home.agent).services.map((v) => [v.name, v.remote, v.state]);
  assert.deepEqual(views.slice(0, 2), [['a', 'tls://alpha.test', 'published'], ['b', 'tls://evil.test', 'refused']]);
  const other = await startAgent(t, office(agentConfig(gw, `    a: { local: "127.0.0.1:${local.port}", remote: "tls://alpha.test" }`)));
  await waitFor(() => other.rec.of('agent-publish-refused').length === 1, 'refused');
  const [r] = other.rec.of('agent-publish-refused');
  assert.deepEqual([r!.code, r!.message], ['name-in-use', 'tls://alpha.test is held by agent "home" (service a)']);
  assert.equal(gw.gateway.counters.publishRefused['name-in-use'], 1);
  assert.equal(gw.gateway.counters.publishRefused['not-allowed'], 3);
  // When the holder goes away, the name is free: the other agent gets it at its next connection.
  await home.agent.close();
  await waitFor(() => gw.gateway.published().every((p) => p.agent !== 'home'), 'home gone');
  await other.agent.close();
  const again = await startAgent(t, office(agentConfig(gw, `    a: { local: "127.0.0.1:${local.port}", remote: "tls://alpha.test" }`)));
  await published(again.agent);
});

test('PROXY v2 from the agent goes before the replayed ClientHello, with the real client and the shared port', async (t) => {
  const received: Buffer[] = [];
  const local = await tcpServer(t, (s) => s.on('data', (d) => received.push(d)));
  const gw = await startGateway(t, namesGateway({ home: ['a.test'] }));
  const { agent } = await startAgent(t, agentConfig(gw, `    site: { local: "127.0.0.1:${local.port}", remote: "tls://a.test", proxyProtocol: v2 }`));
  const port = (await published(agent)).site!;
  const hello = inRecords(clientHelloMessage({ serverName: 'a.test' }), [9, 40]);
  const c = await tcpConnect(t, port);
  c.write(Buffer.concat([hello, Buffer.from('after')]));
  await waitFor(() => Buffer.concat(received).length >= hello.length + 5 + 28, 'header and bytes at the local service');
  const got = Buffer.concat(received);
  const h = decodeProxyHeader(got);
  assert.equal(h.kind, 'ok');
  if (h.kind !== 'ok') return;
  assert.deepEqual([h.header.addresses?.source.port, h.header.addresses?.destination.port], [c.localPort, port]);
  assert.ok(got.subarray(h.length).equals(Buffer.concat([hello, Buffer.from('after')])), 'the ClientHello and what follows, unchanged');
});

/** Agents home (quic://alpha.test) and office (quic://*.beta.test), each to its recorder, on one gateway UDP port. */
async function twoQuicAgents(t: TestContext) {
  const alpha = await recorder(t, 'alpha:');
  const beta = await recorder(t, 'beta:');
  const gw = await startGateway(t, namesGateway({ home: ['alpha.test'], office: ['*.beta.test'] }));
  const home = await startAgent(t, agentConfig(gw, `    h3: { local: "127.0.0.1:${alpha.port}", remote: "quic://alpha.test" }`));
  const other = await startAgent(t, office(agentConfig(gw, `    h3: { local: "127.0.0.1:${beta.port}", remote: "quic://*.beta.test" }`)));
  const port = (await published(home.agent)).h3!;
  assert.equal((await published(other.agent)).h3, port, 'one shared UDP port');
  return { alpha, beta, gw, port };
}

test('two quic:// exposures behind one gateway UDP port: each client\'s Initial reaches only its own agent\'s service; an unknown name is refused', async (t) => {
  const { alpha, beta, gw, port } = await twoQuicAgents(t);
  const [a, b, c] = [await udpClient(t), await udpClient(t), await udpClient(t)];
  const [ia, ib] = [initialFor('alpha.test', 1), initialFor('www.beta.test', 2)];
  a.send(port, ia);
  b.send(port, ib);
  assert.ok((await a.next(5000)).equals(Buffer.concat([Buffer.from('alpha:'), ia])));
  assert.ok((await b.next(5000)).equals(Buffer.concat([Buffer.from('beta:'), ib])));
  // Later datagrams of a client follow its pin (no name in them).
  a.send(port, 'short-header');
  assert.equal((await a.next(5000)).toString(), 'alpha:short-header');
  assert.deepEqual([alpha.got.length, beta.got.length], [2, 1]);
  assert.ok(beta.got[0]!.equals(ib));
  c.send(port, initialFor('gamma.test', 3));
  await waitFor(() => gw.rec.of('session-rejected').some((e) => e.reason === 'no-route-for-name'), 'refused');
  assert.deepEqual(gw.rec.of('session-rejected').map((e) => [e.route, e.reason]), [[`udp://127.0.0.1:${port}`, 'no-route-for-name']]);
  assert.deepEqual([alpha.got.length, beta.got.length], [2, 1]);
});

test('PROXY v2 on a quic:// exposure goes before the first datagram: the real client and the shared port, then the Initial unchanged', async (t) => {
  const local = await recorder(t, 'h3:');
  const gw = await startGateway(t, namesGateway({ home: ['a.test'] }));
  const { agent } = await startAgent(t, agentConfig(gw, `    h3: { local: "127.0.0.1:${local.port}", remote: "quic://a.test", proxyProtocol: v2 }`));
  const port = (await published(agent)).h3!;
  const client = await udpClient(t);
  const initial = initialFor('a.test', 4);
  client.send(port, initial);
  await waitFor(() => local.got.length === 1, 'the first datagram at the local service');
  const h = decodeProxyHeader(local.got[0]!);
  assert.equal(h.kind, 'ok');
  if (h.kind !== 'ok') return;
  assert.deepEqual([h.header.addresses?.source.port, h.header.addresses?.destination.port], [client.port, port]);
  assert.ok(local.got[0]!.subarray(h.length).equals(initial));
});

test('Chromium over QUIC through two quic:// exposures: its real Initials (a post-quantum ClientHello) reach only the agent of the name it asked for', async (t) => {
  if (!havePeer(t, 'chromium', 'chromium')) return;
  const { alpha, beta, gw, port } = await twoQuicAgents(t);
  const a = await browseOverQuic(t, 'alpha.test', port);
  await waitFor(() => alpha.got.length > 0, 'alpha got Chromium\'s Initials', 15_000);
  stopGroup(a.pid);
  const b = await browseOverQuic(t, 'www.beta.test', port);
  await waitFor(() => beta.got.length > 0, 'beta got Chromium\'s Initials', 15_000);
  stopGroup(b.pid);
  // Each agent's service got one client's Initials, complete and unchanged: they read back to its name.
  assert.equal(nameInInitials(alpha.got), 'alpha.test');
  assert.equal(nameInInitials(beta.got), 'www.beta.test');
  const clients = (route: string) => gw.rec.of('session-started').filter((e) => e.flow.route === route).map((e) => e.flow.client.port);
  assert.ok(clients('home/h3').length >= 1 && clients('office/h3').length >= 1);
  assert.ok(!clients('home/h3').some((p) => clients('office/h3').includes(p)), 'no client reached both agents');
});

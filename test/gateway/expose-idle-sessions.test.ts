import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { freePort, udpEcho, waitFor } from '../helpers/net.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

const SESSIONS = 1000;
const UNLIMITED = '{ idleTimeout: 5s, maxSessions: 0, maxSessionsPerSource: 0, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }';

/**
 * The per-session tables at both ends of an exposure (the gateway's session table and connectee
 * tags, the agent's tags and session table) hold each idle session once and let
 * every one of them go when it idles out: after 1,000 sessions, all are empty again.
 */
test('1,000 exposed UDP sessions idle out: every per-session table at the gateway and the agent returns to 0', async (t) => {
  const echo = await udpEcho(t);
  const { gateway, fingerprint, port: gwPort } = await startGateway(t, gatewayConfig(`  keepaliveInterval: 100ms\n  services:\n    udp: ${UNLIMITED}\n`));
  const port = await freePort('udp');
  const { agent } = await startAgent(t, agentConfig({ port: gwPort, fingerprint }, `    echo: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:${port}, udp: ${UNLIMITED} }`));
  await published(agent);
  // A few of the sessions exchange more datagrams, so they are handed to the native batch on that datapath.
  const sockets: dgram.Socket[] = [];
  t.after(() => sockets.forEach((s) => s.close()));
  let answered = 0;
  for (let i = 0; i < SESSIONS; i++) {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    s.on('message', () => answered++);
    sockets.push(s);
  }
  for (const [i, s] of sockets.entries()) {
    s.send(`hello ${i}`, port, '127.0.0.1');
    if (i % 50 === 49) await waitFor(() => answered >= i - 10, `answers up to ${i}`, 10_000);
  }
  await waitFor(() => answered >= SESSIONS, 'every session answered once', 10_000);
  for (const s of sockets.slice(0, 20)) for (let k = 0; k < 5; k++) s.send(`more ${k}`, port, '127.0.0.1');
  await waitFor(() => answered >= SESSIONS + 100, 'the busier sessions answered', 10_000);

  const link = gateway.agents()[0]!;
  const route = gateway.published()[0]!.route;
  const svc = agent.local.services[0]!;
  assert.equal(route.active, SESSIONS, 'one gateway session per client');
  assert.equal(link.connectees, SESSIONS, 'one connectee tag per client');
  assert.equal(agent.local.tagCount, SESSIONS, 'one agent tag per client');
  assert.equal(svc.table!.size, SESSIONS, 'one agent session per client');

  await waitFor(() => route.active === 0 && link.connectees === 0 && agent.local.tagCount === 0 && svc.table!.size === 0, 'every table empty after the idle timeout', 20_000);
});

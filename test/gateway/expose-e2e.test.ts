import { test, type TestContext } from 'node:test';
import type { UdpDatapath } from '../../src/datapath/udp-datapath.js';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { freePort, readAll, sleep, tcpConnect, tcpServer, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { datapathCases } from '../datapath/datapaths.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

for (const dp of datapathCases()) {
  test(`TCP echo through an exposed service, with half-close [${dp.kind}]`, { skip: dp.skip ?? false }, async (t) => {
    // On native, the gateway's public listener accepts natively and relays to the tunnel stream as a Node socket.
    await tcpEchoThroughExposure(t, dp.datapath);
  });
}

async function tcpEchoThroughExposure(t: TestContext, datapath: UdpDatapath | undefined) {
  const echo = await tcpServer(t);
  const gw = await startGateway(t, gatewayConfig(), undefined, datapath);
  const port = await freePort();
  const { agent } = await startAgent(t, agentConfig(gw, `    echo: { local: 127.0.0.1:${echo.port}, remote: tcp://127.0.0.1:${port} }`));
  const ports = await published(agent);
  assert.equal(ports.echo, port);
  const c = await tcpConnect(t, port);
  c.end('hello through the tunnel');
  assert.equal((await readAll(c)).toString(), 'hello through the tunnel');
  await waitFor(() => gw.gateway.agent('home')!.streams === 0, 'stream released');
}

for (const c of datapathCases()) {
  test(`UDP echo through an exposed service delivers every datagram at a modest rate [${c.kind}]`, { skip: c.skip ?? false }, async (t) => {
    const echo = await udpEcho(t);
    const gw = await startGateway(t, gatewayConfig(), undefined, c.datapath);
    const port = await freePort('udp');
    const { agent } = await startAgent(t, agentConfig(gw, `    wg: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:${port} }`), undefined, c.datapath);
    await published(agent);
    await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');
    const client = await udpClient(t);
    const n = 200;
    for (let i = 0; i < n; i++) {
      client.send(port, `d${i}`);
      await sleep(2);
    }
    const got = new Set<string>();
    while (got.size < n) got.add((await client.next(2000)).toString());
    assert.equal(got.size, n);
    assert.equal(gw.gateway.counters.datagramsToAgentOverTls, 0);
    // Sessions forwarded in the native batch reach the counters on the next sweep (docs/datapath.md).
    await waitFor(() => gw.gateway.counters.datagramsToAgent >= n, `${n} datagrams counted`, 2000);
  });
}

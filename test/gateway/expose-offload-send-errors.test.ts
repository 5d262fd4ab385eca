import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { createMetrics } from '../../src/observe/metrics.js';
import { forwarded } from '../datapath/forwarded.js';
import { freePort, udpEcho, waitFor } from '../helpers/net.js';
import { forgeBroadcastSource, haveRawSockets } from '../helpers/forged-source.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

// Datagrams of an offloaded exposed session that the native batch fails to send are counted as
// `send-error` drops of the route that owns the session (docs/metrics.md), as the JavaScript
// path's are. The failure is the kernel's own: a client whose source is the loopback broadcast
// address 127.255.255.255 (forged on a raw socket) is answered through a socket without
// SO_BROADCAST, and every reply to it fails with EACCES, in JavaScript and in the batch alike.

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

function datapath(t: TestContext): NativeDatapath {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout);
  t.after(() => dp.destroy());
  return dp;
}

/** `sluice_datagrams_dropped_total{route, reason="send-error"}` in `text`, 0 when absent. */
function sendErrors(text: string, route: string): number {
  const line = text.split('\n').find((l) => l.startsWith('sluice_datagrams_dropped_total{') && l.includes(`route="${route}"`) && l.includes('reason="send-error"'));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('replies the batch cannot send to the client count as send-error drops of the exposure, as those JavaScript could not send do', { skip, timeout: 30_000 }, async (t) => {
  if (!haveRawSockets(t)) return;
  const dp = datapath(t);
  const echo = await udpEcho(t);
  const gw = await startGateway(t, gatewayConfig(), undefined, dp);
  const registry = new Registry();
  gw.events.subscribe(createMetrics(registry).sink);
  const port = await freePort('udp');
  const { agent } = await startAgent(t, agentConfig(gw, `    wg: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:${port} }`), undefined, dp);
  await published(agent);
  await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');
  const sport = await freePort('udp');
  const forge = (count: number, first: number) => forgeBroadcastSource(port, sport, count, first);

  // Round trips one at a time (each answered by the service, each answer refused by the kernel at
  // the gateway) until the session is handed over to the batch at both ends.
  const singles = 5;
  for (let i = 0; i < singles; i++) {
    forge(1, i);
    await waitFor(() => echo.received === i + 1, `the service got datagram ${i}`, 5000);
  }
  const before = forwarded(dp);
  assert.ok(before > 0, `the session is forwarded in the batch (${before} hops)`);
  // A burst, all in the batch: client -> agent -> service and service -> agent -> gateway; every
  // answer then fails at the gateway's send to the client.
  const burst = 50;
  forge(burst, singles);
  const all = singles + burst;
  await waitFor(() => echo.received === all, `the service got all ${all} (${echo.received})`, 10_000);
  const route = 'home/wg';
  const deadline = Date.now() + 10_000;
  let n = 0;
  while ((n = sendErrors(await registry.metrics(), route)) < all && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const text = await registry.metrics();
  assert.equal(n, all, `every answer is a send-error drop of ${route}:\n${text.split('\n').filter((l) => l.startsWith('sluice_datagrams_dropped')).join('\n')}`);
  assert.ok(forwarded(dp) - before >= 2 * burst, `the burst went through the batch (${forwarded(dp) - before} hops)`);
});

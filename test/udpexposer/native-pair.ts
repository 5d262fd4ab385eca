import type { TestContext } from 'node:test';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import type { UdpexposerKey } from '../../src/protocol/udpexposer/key.js';
import { UdpexposerClient } from '../../src/udpexposer/client.js';
import { UdpexposerServer } from '../../src/udpexposer/server.js';
import type { UdpexposerServerOptions } from '../../src/udpexposer/server-core.js';
import { peerPolicy } from '../../src/udpexposer/peer-policy.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { echoServer, waitFor } from './net.js';

const loaded = loadNativeBinding();

/**
 * A Sluice udpexposer server and client, each on a native engine of its own, the client's target
 * an echo service; resolves once the client is registered (and authenticated with a key). All of
 * it is closed after the test. Callers skip where the native datapath is unavailable.
 */
export async function nativePair(t: TestContext, key?: UdpexposerKey, serverOpts: Partial<UdpexposerServerOptions> = {}, clientMax = 8) {
  if (!loaded.ok) throw new Error('unreachable');
  const serverDp = new NativeDatapath(loaded.binding, loaded.layout, {});
  const clientDp = new NativeDatapath(loaded.binding, loaded.layout, {});
  const echo = await echoServer(t);
  const ac = new AbortController();
  const clock = new ManualClock();
  const server = await UdpexposerServer.listen(
    { listen: { host: '127.0.0.1', port: 0 }, maxClients: 8, key, peerPolicy: peerPolicy({ allowPrivate: false, allowLoopback: true }), ...serverOpts },
    { clock, datapath: serverDp },
    ac.signal,
  );
  const client = await UdpexposerClient.start(
    { listen: { host: '127.0.0.1', port: 0 }, server: { host: '127.0.0.1', port: server.local.port }, target: { host: '127.0.0.1', port: echo.port }, maxClients: clientMax, pingIntervalMs: 25_000, key },
    { clock, datapath: clientDp },
    ac.signal,
  );
  t.after(async () => {
    ac.abort();
    await Promise.all([server.closed, client.closed]);
    serverDp.destroy();
    clientDp.destroy();
  });
  await waitFor(() => server.client !== undefined && (key === undefined || client.authenticated));
  return { server, client, echo, clock };
}

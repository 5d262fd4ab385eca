import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SluiceEvent } from '../../src/observe/events.js';
import type { UdpDatapath } from '../../src/datapath/udp-datapath.js';
import { jsDatapath } from '../../src/datapath/js-datapath.js';
import { nativeCase } from '../datapath/datapaths.js';
import { forwarded } from '../datapath/forwarded.js';
import type { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { waitFor } from '../helpers/net.js';
import { burstWhileBlocked, floodClients, nextMessage } from '../helpers/udp-flood-clients.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

/** Datagrams/s over which a public client gets its own socket here (the warm-up flood sends 4 times that). */
const ISOLATE_ABOVE = 500;

const fds = () => readdirSync('/proc/self/fd').length;

async function echo(t: TestContext): Promise<number> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => s.close());
  return s.address().port;
}

type Isolation = Extract<SluiceEvent, { type: 'udp-isolation' }>;

/**
 * A public client of an exposure that floods: on the native datapath it gets its own socket at
 * the gateway's public port, so while the relay cannot read (its loop blocked) the kernel drops
 * the flood's excess there and a second client's datagrams wait in the listener's queue and are
 * all answered; on js, the shared queue as before (only correct, not isolated).
 */
async function floodThroughExposure(t: TestContext, datapath: UdpDatapath) {
  const native = datapath.kind === 'native';
  const echoPort = await echo(t);
  const udp = `{ idleTimeout: 2s, isolateAbove: ${ISOLATE_ABOVE}, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }`;
  const gw = await startGateway(t, gatewayConfig(`  keepaliveInterval: 100ms\n  services:\n    udp: ${udp}\n`), undefined, datapath);
  const { agent } = await startAgent(t, agentConfig({ port: gw.port, fingerprint: gw.fingerprint }, `    echo: { local: 127.0.0.1:${echoPort}, remote: udp://127.0.0.1:0, udp: { idleTimeout: 2s, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } } }`), undefined, datapath);
  const port = (await published(agent)).echo!;
  await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');
  const route = gw.gateway.published()[0]!.route.name;

  const dir = mkdtempSync(join(tmpdir(), 'sluice-expose-isolate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'clients.cjs'), floodClients);
  const child = fork(join(dir, 'clients.cjs'), [String(port), '127.0.0.1', 'udp4'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.after(() => child.kill());
  const bound = await nextMessage(child, 'bound');
  const baseline = fds();
  const isolations = () => gw.seen.filter((e): e is Isolation => e.type === 'udp-isolation' && e.route === route);
  const kernelDrops = () => gw.seen.filter((e) => e.type === 'datagrams-dropped' && e.route === route && e.reason === 'isolated-kernel').reduce((n, e) => n + (e as { count: number }).count, 0);

  child.send('hello');
  assert.equal((await nextMessage(child, 'hello')).got, 1, 'the second client is answered before the flood');
  child.send('warm');
  if (native) {
    await waitFor(() => isolations().some((e) => e.change === 'isolated'), 'the flooder isolated at the gateway', 5000);
    assert.deepEqual(isolations().map((e) => [e.client.port, e.change, e.reason]), [[bound.flood, 'isolated', 'over-rate']]);
    // Its session is forwarded in the batch again, now from its own socket.
    const f0 = forwarded(datapath as NativeDatapath);
    await waitFor(() => forwarded(datapath as NativeDatapath) > f0 + 200, `the batch forwards the isolated session (${forwarded(datapath as NativeDatapath) - f0} since)`, 5000);
  } else {
    await new Promise((r) => setTimeout(r, 1000));
  }
  const publicRoute = gw.gateway.published()[0]!.route;
  const victimIn = () => publicRoute.sessions().find((x) => x.client.port === bound.victim)?.packetsFromClient ?? 0;
  await burstWhileBlocked(t, child, native, kernelDrops, datapath.kind, victimIn);
  if (!native) {
    assert.equal(isolations().length, 0, 'the js datapath never isolates');
  }
  // The public sessions idle out; the flooder's own socket goes (calm first, or with its session).
  await waitFor(() => gw.seen.filter((e) => e.type === 'session-ended' && e.flow.route === route).length === 2, 'both public sessions ended', 10_000);
  // (The second client may be isolated too once the relay reads its backlog at once: over the threshold for a sweep.)
  if (native) assert.deepEqual(isolations().filter((e) => e.client.port === bound.flood).map((e) => e.change), ['isolated', 'released']);
  // The agent's sessions toward the service end with the gateway's (its DATAGRAM_CLOSE) or, at
  // the latest, by their own idle timeout, which is the gateway's here: only then is every
  // descriptor of the test's traffic gone at both ends.
  const agentSessions = () => [...agent.local.udpSessions()].length;
  await waitFor(() => agentSessions() === 0, `the agent's sessions toward the service ended (${agentSessions()} open)`, 10_000);
  await waitFor(() => fds() <= baseline, `descriptors back to ${baseline} (now ${fds()}; agent sessions ${agentSessions()})`, 3000);
}

test('exposure under a flood (native): the flooding public client gets its own socket at the gateway, its excess is dropped there, a second client is answered, the socket goes with the session', async (t) => {
  const c = nativeCase();
  if (c.skip) return t.skip(c.skip);
  await floodThroughExposure(t, c.datapath!);
});

test('exposure under a flood (js): no socket of its own, the same traffic still carried', async (t) => {
  await floodThroughExposure(t, jsDatapath);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { Agent } from '../../src/agent/agent.js';
import { systemClock } from '../../src/core/clock.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { peerAgentConfig } from './connect-helpers.js';

/**
 * A connect listener that cannot bind fails the agent's start, named, before the agent ever
 * dials the gateway: the listeners are bound first, then the agent connects. The "gateway" is a
 * plain TCP server counting connections; a probe connection made after the failure is its
 * first, so no dial came before it.
 */
test('a connect listener that cannot bind fails the start by name; the agent never dialed the gateway and leaves nothing bound', async (t) => {
  const seen: net.Socket[] = [];
  const gateway = net.createServer((s) => seen.push(s.on('error', () => {})));
  gateway.listen(0, '127.0.0.1');
  await once(gateway, 'listening');
  const taken = net.createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.after(() => {
    for (const s of seen) s.destroy();
    gateway.close();
    taken.close();
  });
  const takenPort = (taken.address() as net.AddressInfo).port;
  const config = peerAgentConfig(
    { port: (gateway.address() as net.AddressInfo).port, fingerprint: `sha256:${'ab'.repeat(32)}` },
    'laptop',
    `  connect:\n    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0 }\n    home-ssh: { peer: home, service: ssh, listen: tcp://127.0.0.1:${takenPort} }\n`,
  );
  const events = new EventStream((err) => {
    throw err;
  });
  const emitted: SluiceEvent[] = [];
  events.subscribe((e) => emitted.push(e));

  await assert.rejects(Agent.start(config, { clock: systemClock, events, nextFlowId: () => 1 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SLUICE_ERR_BIND');
    assert.match(err.message, new RegExp(`agent\\.connect\\.home-ssh\\.listen: cannot listen on tcp://127\\.0\\.0\\.1:${takenPort}: EADDRINUSE`));
    return true;
  });

  const probe = net.connect((gateway.address() as net.AddressInfo).port, '127.0.0.1');
  t.after(() => probe.destroy());
  await once(probe, 'connect');
  while (seen.length === 0) await once(gateway, 'connection');
  assert.equal(seen.length, 1, 'only the probe reached the gateway');
  assert.equal(seen[0]!.remotePort, probe.localPort);
  assert.deepEqual(emitted.filter((e) => e.type.startsWith('agent-')).map((e) => e.type), [], 'no connection attempt was reported');
  // The UDP listener bound before the failure was closed with it (the leak check after this file holds it to that too).
  assert.deepEqual(emitted.filter((e) => e.type === 'route-up').map((e) => (e as { route: string }).route), ['connect/home-wg']);
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { forwarded } from '../datapath/forwarded.js';
import { freePort, udpClient, udpEcho, waitFor } from '../helpers/net.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

// An exposure whose tunnel sockets receive coalesced runs (docs/datapath.md, "Coalesced receives
// on the tunnel sockets"): windows of datagrams of an established session cross the tunnel as
// runs, are cut back into their datagrams, and every datagram is echoed once, in order, with the
// session records exact.

const loaded = loadNativeBinding();
const skip = !loaded.ok ? `native datapath unavailable: ${loaded.reason}` : !loaded.layout.gso ? 'this kernel has no UDP_SEGMENT: nothing is coalesced' : false;

const ended = (seen: readonly SluiceEvent[]) => seen.filter((e): e is Extract<SluiceEvent, { type: 'session-ended' }> => e.type === 'session-ended');

async function exposure(t: TestContext, gro: boolean) {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout, { gro });
  t.after(() => dp.destroy());
  const echo = await udpEcho(t);
  const gw = await startGateway(t, gatewayConfig('  services:\n    udp: { idleTimeout: 1s }\n'), undefined, dp);
  const port = await freePort('udp');
  const { agent, seen: agentSeen } = await startAgent(t, agentConfig(gw, `    wg: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:${port}, udp: { idleTimeout: 1s } }`), undefined, dp);
  await published(agent);
  await waitFor(() => agent.datagramMode === 'udp', 'UDP path up');
  return { dp, gw, agentSeen, port };
}

for (const gro of [true, false]) {
  test(`windows of 64 datagrams through an exposure, tunnel receives ${gro ? 'coalesced' : 'one by one (gro off)'}: every datagram echoed once in order; records exact`, { skip }, async (t) => {
    const x = await exposure(t, gro);
    const client = await udpClient(t);
    let bytes = 0;
    const sent: string[] = [];
    const send = (msg: string) => {
      bytes += msg.length;
      sent.push(msg);
      client.send(x.port, msg);
    };
    // Three round trips hand the session over at both ends.
    for (let i = 0; i < 3; i++) {
      send(`hello ${i}`);
      await waitFor(() => client.inbox.length === sent.length, `round trip ${i}`, 2000);
    }
    const windows = 10;
    for (let w = 0; w < windows; w++) {
      // One window staged in one tick: the gateway harvests it whole and seals it as one run.
      for (let i = 0; i < 64; i++) send(`w${w} d${i} `.padEnd(40 + (i % 3 === 2 ? 0 : 8), '.'));
      await waitFor(() => client.inbox.length === sent.length, `window ${w} echoed (${client.inbox.length} of ${sent.length})`, 3000);
    }
    assert.deepEqual(
      client.inbox.map((b) => b.toString()),
      sent,
    );
    const n = sent.length;
    assert.ok(forwarded(x.dp) >= 4 * 64 * windows, `forwarded in the batch: ${forwarded(x.dp)}`);
    if (gro) assert.ok(x.dp.coalesceStats.coalesced > 0, `runs arrived coalesced (${JSON.stringify(x.dp.coalesceStats)})`);
    else assert.deepEqual(x.dp.coalesceStats, { coalesced: 0, carried: 0 });
    await waitFor(() => ended(x.gw.seen).length === 1 && ended(x.agentSeen).length === 1, 'both sessions end idle', 5000);
    for (const e of [...ended(x.gw.seen), ...ended(x.agentSeen)]) {
      assert.deepEqual(e.counters, { bytesFromClient: bytes, packetsFromClient: n, bytesToClient: bytes, packetsToClient: n }, `${e.flow.route} counts every datagram`);
    }
  });
}

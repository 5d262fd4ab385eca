import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { systemClock } from '../../src/core/clock.js';
import { DatagramDemux, attachDatagramHandler, dgramSender } from '../../src/gateway/demux.js';
import { StunBindingServer, stunRoute } from '../../src/gateway/stun-server.js';
import { StunTransactionTable } from '../../src/turn/stun-transaction.js';
import {
  StunMethod, XorMappedAddress, decodeStunDatagram, encodeStunMessage, getAttribute, randomTransactionId, stunMessage,
} from '../../src/protocol/stun/index.js';
import { haveCoturn, startCoturn } from '../turn/coturn.js';

/**
 * Interop with Debian's coturn 4.6 (apt-get install coturn): its STUN client against Sluice's
 * server, and Sluice's client against its turnserver. Everything on 127.0.0.1, ports found at
 * run time. Without coturn: fail in CI, skip loudly elsewhere.
 */

async function udp(t: TestContext): Promise<{ socket: dgram.Socket; port: number }> {
  const ac = new AbortController();
  const socket = dgram.createSocket({ type: 'udp4', signal: ac.signal });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.after(async () => {
    ac.abort();
    await once(socket, 'close').catch(() => {});
  });
  return { socket, port: socket.address().port };
}

test('turnutils_stunclient gets its own address from Sluice\'s STUN server', { timeout: 30_000 }, async (t) => {
  if (!haveCoturn(t, 'STUN interop with coturn')) return;
  const gw = await udp(t);
  const server = new StunBindingServer(dgramSender(gw.socket));
  const sources: number[] = [];
  const route = stunRoute(server);
  const demux = new DatagramDemux({ stun: (buf, from) => (sources.push(from.port), route(buf, from)) });
  t.after(attachDatagramHandler(gw.socket, demux.handle));

  const { stdout } = await promisify(execFile)('turnutils_stunclient', ['-p', String(gw.port), '127.0.0.1'], { timeout: 20_000 });
  const m = /UDP reflexive addr: ([\d.]+):(\d+)/.exec(stdout);
  assert.ok(m, `no reflexive address in output:\n${stdout}`);
  assert.equal(m[1], '127.0.0.1');
  assert.ok(sources.length > 0);
  assert.ok(sources.includes(Number(m[2])), `mapped port ${m[2]} is not a source port we saw (${sources.join(', ')})`);
  assert.ok(server.counters.answered > 0);
  assert.equal(server.counters.errorResponses, 0);
});

test('Sluice\'s client gets its own address from coturn turnserver', { timeout: 60_000 }, async (t) => {
  if (!haveCoturn(t, 'STUN interop with coturn')) return;
  // coturn.ts's turnserver (long-term credentials on; a Binding request needs none), STUN only.
  const turn = await startCoturn(t, ['--stun-only']);
  const port = turn.port;

  const cl = await udp(t);
  const table = new StunTransactionTable({ clock: systemClock, send: dgramSender(cl.socket) }, { rtoMs: 250 });
  t.after(() => table.close());
  t.after(
    attachDatagramHandler(cl.socket, (buf, from) => {
      try {
        const msg = decodeStunDatagram(buf);
        if (msg) table.handleResponse(msg, from);
      } catch {
        // not ours to judge here; a broken datagram simply does not complete the transaction
      }
    }),
  );
  // Retransmissions cover turnserver's start-up: the first requests may arrive before it binds.
  const req = encodeStunMessage(stunMessage('request', StunMethod.Binding, randomTransactionId()), { fingerprint: true });
  const res = await table.request(req, { address: '127.0.0.1', port }).catch((e: unknown) => {
    throw new Error(`no answer from turnserver; its log:\n${turn.log()}`, { cause: e });
  });
  assert.equal(res.response.cls, 'success');
  assert.equal(res.response.fingerprint, 'valid');
  assert.deepEqual(getAttribute(res.response, XorMappedAddress), { address: '127.0.0.1', port: cl.port, family: 4 });
  assert.deepEqual(res.from, { address: '127.0.0.1', port });
});

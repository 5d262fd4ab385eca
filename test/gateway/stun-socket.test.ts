import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { systemClock } from '../../src/core/clock.js';
import { DatagramDemux, attachDatagramHandler, dgramSender } from '../../src/gateway/demux.js';
import { StunBindingServer, stunRoute } from '../../src/gateway/stun-server.js';
import { StunTransactionTable } from '../../src/turn/stun-transaction.js';
import {
  StunMethod, XorMappedAddress, decodeStunDatagram, encodeStunMessage, getAttribute, randomTransactionId, stunMessage,
} from '../../src/protocol/stun/index.js';

async function udp(t: import('node:test').TestContext): Promise<{ socket: dgram.Socket; port: number }> {
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

test('one socket serves STUN and echoes application datagrams; a client on another socket gets its own port back', async (t) => {
  const gw = await udp(t);
  const send = dgramSender(gw.socket);
  const server = new StunBindingServer(send);
  const demux = new DatagramDemux({
    stun: stunRoute(server),
    application: (buf, from) => send(buf, from.port, from.address),
  });
  t.after(attachDatagramHandler(gw.socket, demux.handle));

  const cl = await udp(t);
  const table = new StunTransactionTable({ clock: systemClock, send: dgramSender(cl.socket) }, { rtoMs: 100 });
  const app: Buffer[] = [];
  t.after(
    attachDatagramHandler(cl.socket, (buf, from) => {
      const m = buf[0]! <= 3 ? decodeStunDatagram(buf) : undefined;
      if (m) table.handleResponse(m, from);
      else app.push(buf);
    }),
  );
  t.after(() => table.close());

  const req = encodeStunMessage(stunMessage('request', StunMethod.Binding, randomTransactionId()), { fingerprint: true });
  const gotApp = once(cl.socket, 'message');
  cl.socket.send(Buffer.from('\x80hello', 'latin1'), gw.port, '127.0.0.1');
  const res = await table.request(req, { address: '127.0.0.1', port: gw.port });
  assert.equal(res.response.cls, 'success');
  assert.equal(res.response.fingerprint, 'valid');
  assert.deepEqual(getAttribute(res.response, XorMappedAddress), { address: '127.0.0.1', port: cl.port, family: 4 });
  assert.deepEqual(res.from, { address: '127.0.0.1', port: gw.port });
  await gotApp;
  assert.equal(app[0]?.toString('latin1'), '\x80hello');
  assert.equal(server.counters.answered, 1);
  assert.equal(table.size, 0);
});

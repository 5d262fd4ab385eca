import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamConn } from '../../src/datapath/stream-datapath.js';
import { DataConnRegistry, LinkDataConns } from '../../src/gateway/data-conns.js';
import { encodeDataHello, exportDataKeys, exportDataToken } from '../../src/protocol/tunnel/index.js';
import { makeTestCertificate, tlsPair } from '../protocol/tunnel/tls-pair.js';

/** The gateway's check of data connection hellos and its idle pool, on a real TLS 1.3 session. */

const creds = makeTestCertificate();

function fakeConn(): StreamConn & { destroyed: boolean } {
  const c = { destroyed: false, destroy: () => void (c.destroyed = true) };
  return c as unknown as StreamConn & { destroyed: boolean };
}

test('hellos: kept in order until the pool is full; replays, forgeries and strangers refused; closed with the control connection', { skip: creds ? false : 'no openssl' }, async (t) => {
  const { agent, gateway } = await tlsPair(t, creds!);
  const token = exportDataToken(agent);
  const hello = (counter: number) => {
    const k = exportDataKeys(agent, counter, 'agent');
    return encodeDataHello(token, counter, k.sealKey, k.sealIv);
  };
  const registry = new DataConnRegistry();
  const conns = new LinkDataConns(exportDataToken(gateway), gateway, 2);
  registry.add(conns);
  const [a, b, c] = [fakeConn(), fakeConn(), fakeConn()];
  assert.equal(registry.admit(hello(1), a), undefined);
  assert.equal(registry.admit(hello(1), fakeConn()), 'replayed');
  assert.equal(registry.admit(hello(3), b), undefined, 'counters may skip');
  assert.equal(registry.admit(hello(2), fakeConn()), 'pool-full', 'authentic, but two are idle already');
  assert.equal(registry.admit(hello(2), fakeConn()), 'replayed', 'a counter is used up even when the pool was full');
  const forged = hello(4);
  forged[forged.length - 1]! ^= 1;
  assert.equal(registry.admit(forged, fakeConn()), 'forged');
  assert.equal(registry.admit(hello(4), c), 'pool-full', 'a forgery did not use the counter up');
  const stranger = hello(5);
  stranger[4]! ^= 1;
  assert.equal(registry.admit(stranger, fakeConn()), 'unknown-token');
  assert.equal(registry.admit(Buffer.alloc(48), fakeConn()), 'bad-hello');
  // Taken oldest first; one closed meanwhile is skipped.
  a.destroyed = true;
  assert.equal(conns.take()?.counter, 3);
  assert.equal(conns.take(), undefined);
  assert.equal(registry.admit(hello(6), c), undefined);
  registry.remove(conns);
  assert.equal(c.destroyed, true, 'idle ones close with the control connection');
  assert.equal(registry.admit(hello(7), fakeConn()), 'unknown-token');
});

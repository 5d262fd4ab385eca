import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import type { StreamConn } from '../../src/datapath/stream-datapath.js';
import { DataConnRegistry, LinkDataConns } from '../../src/gateway/data-conns.js';
import { encodeDataHello, exportDataKeys, exportDataToken, readDataHello } from '../../src/protocol/tunnel/index.js';
import { makeTestCertificate, tlsPair } from '../protocol/tunnel/tls-pair.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** The gateway's check of data connection hellos and its idle pool, on a real TLS 1.3 session. */

const creds = makeTestCertificate();

/**
 * A connection as the native datapath holds it, without a socket: `readable` resolves when
 * `arrive` is called (a FIN, a reset or bytes), which is what the idle guard watches for.
 */
function fakeConn(): StreamConn & { destroyed: boolean; keepAlives: number; arrive(): void } {
  let arrive!: () => void;
  const ready = new Promise<void>((r) => (arrive = r));
  const c = {
    destroyed: false,
    keepAlives: 0,
    destroy: () => void (c.destroyed = true),
    keepAlive: () => void c.keepAlives++,
    readable: () => ready,
    arrive: () => arrive(),
  };
  return c as unknown as StreamConn & { destroyed: boolean; keepAlives: number; arrive(): void };
}

/** The agent's hello for `counter` on this TLS session. */
function helloOf(agent: TLSSocket): (counter: number) => Buffer {
  const token = exportDataToken(agent);
  return (counter) => {
    const k = exportDataKeys(agent, counter, 'agent');
    return encodeDataHello(token, counter, k.sealKey, k.sealIv);
  };
}

test('hellos: kept in order until the pool is full; replays, forgeries and strangers refused; closed with the control connection', { skip: creds ? false : 'no openssl' }, async (t) => {
  const { agent, gateway } = await tlsPair(t, creds!);
  const hello = helloOf(agent);
  const registry = new DataConnRegistry();
  const conns = new LinkDataConns(exportDataToken(gateway), gateway, 2, new ManualClock());
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

test('an idle connection is guarded: keepalive on, and dropped (closed, never handed to a stream) once anything arrives on it', { skip: creds ? false : 'no openssl' }, async (t) => {
  const { agent, gateway } = await tlsPair(t, creds!);
  const hello = helloOf(agent);
  const conns = new LinkDataConns(exportDataToken(gateway), gateway, 4, new ManualClock());
  const [a, b] = [fakeConn(), fakeConn()];
  assert.equal(conns.admit(readDataHello(hello(1)), a), undefined);
  assert.equal(conns.admit(readDataHello(hello(2)), b), undefined);
  assert.deepEqual([a.keepAlives, b.keepAlives], [1, 1], 'keepalive on each idle connection');
  a.arrive(); // a FIN while idle: the agent replaced it
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(a.destroyed, true, 'closed at once');
  assert.equal(conns.idle, 1);
  assert.equal(conns.take()?.conn, b, 'only the live one is handed out');
  assert.equal(conns.take(), undefined);
  b.arrive(); // its stream's bytes: the guard was released when it was taken
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(b.destroyed, false, 'a taken connection is the stream\'s, not the guard\'s');
  conns.close();
});

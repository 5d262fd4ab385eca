import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { relaySealed } from '../../src/datapath/sealed-relay.js';
import type { PairEnd } from '../../src/datapath/stream-datapath.js';
import { acceptedConn, mirror, nativeDp, nativeLink, skip, testKeys } from './sealed-harness.js';

// The two implementations of a data connection's records face each other: the engine's sealed pair
// at one end (as at a gateway on the native datapath) and the TypeScript relay at the other (as at
// an agent on the js datapath), so each opens exactly what the other seals, key updates included.

/** A Node socket pair on loopback: the server's side and the client's. */
async function nodePair(t: TestContext, host: string): Promise<{ inner: net.Socket; outer: net.Socket }> {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, host);
  await once(server, 'listening');
  const outer = net.connect({ host, port: (server.address() as net.AddressInfo).port, allowHalfOpen: true });
  const [inner] = (await once(server, 'connection')) as [net.Socket];
  server.close();
  for (const s of [inner, outer]) {
    s.on('error', () => {});
    t.after(() => s.destroy());
  }
  if (outer.connecting) await once(outer, 'connect');
  return { inner, outer };
}

function readAll(s: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  return new Promise((resolve) => s.once('end', () => resolve(Buffer.concat(parts))));
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const host of ['127.0.0.1', '::1']) {
  test(`the engine's sealed pair and the TypeScript relay open each other's records, key updates included (${host})`, { skip }, async (t) => {
    const dp = nativeDp();
    dp.setSealedLimits(5, 1 << 20); // the engine rekeys every 5 records: the relay must follow
    t.after(() => dp.setSealedLimits(2 ** 24, 2 ** 36));
    const a = await acceptedConn(t, host); // a.peer: the client at the engine's end
    const link = await nativeLink(t, host); // the data connection
    const b = await nodePair(t, host); // b.outer: the service at the relay's end
    const keys = testKeys(0, 1);
    const ends: Promise<PairEnd>[] = [];
    let nativeEnd!: (e: PairEnd) => void;
    ends.push(new Promise((r) => (nativeEnd = r)));
    assert.ok(dp.pipeSealed(a.conn, link.dialed, keys, 0, nativeEnd), 'joined in the engine');
    let relayEnd!: (e: PairEnd) => void;
    ends.push(new Promise((r) => (relayEnd = r)));
    relaySealed(b.inner, link.accepted.socket(), mirror(keys), 0, relayEnd);

    const up = randomBytes(3_000_000);
    const down = randomBytes(1_200_000);
    const atService = readAll(b.outer);
    const atClient = readAll(a.peer);
    a.peer.end(up);
    b.outer.end(down);
    assert.equal(digest(await atService), digest(up), 'client -> engine -> relay -> service');
    assert.equal(digest(await atClient), digest(down), 'service -> relay -> engine -> client');
    const [n, r] = await Promise.all(ends);
    assert.deepEqual([n.bytesFromClient, n.bytesToClient], [up.length, down.length]);
    assert.deepEqual([r.bytesFromClient, r.bytesToClient], [down.length, up.length]);
    assert.ok(!n.code && !r.code, `clean ends (${n.reason} ${n.code ?? ''}, ${r.reason} ${r.code ?? ''})`);
  });
}

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import type { PairEnd, StreamConn } from '../../src/datapath/stream-datapath.js';
import { mirror, nativeDp, skip, testKeys } from './sealed-harness.js';

// Two sealed pairs back to back in one engine, the gateway's end and the agent's: client A <->
// pair A <-> sealed TCP <-> pair B <-> client B, pair B with the mirrored keys. Bytes, FINs,
// memory and descriptors are checked at the two plain clients.

/** A native listener whose accepted connections are claimed by their peer's port (connects may overlap). */
async function acceptor(t: TestContext, host: string) {
  const dp = nativeDp();
  const arrived = new Map<number, StreamConn>();
  const claims = new Map<number, (c: StreamConn) => void>();
  const listener = await dp.listen(host, 0, (c) => {
    const port = c.remote!.port;
    const claim = claims.get(port);
    claims.delete(port);
    if (claim) claim(c);
    else arrived.set(port, c);
  });
  t.after(() => listener.close());
  const take = (peerPort: number) => {
    const c = arrived.get(peerPort);
    arrived.delete(peerPort);
    return c ? Promise.resolve(c) : new Promise<StreamConn>((r) => claims.set(peerPort, r));
  };
  return { port: listener.local.port, take };
}

type Acceptor = Awaited<ReturnType<typeof acceptor>>;

async function client(t: TestContext, host: string, acc: Acceptor): Promise<{ sock: net.Socket; conn: StreamConn }> {
  const sock = net.connect({ host, port: acc.port, allowHalfOpen: true });
  sock.on('error', () => {});
  t.after(() => sock.destroy());
  await once(sock, 'connect');
  return { sock, conn: await acc.take(sock.localPort!) };
}

async function chain(t: TestContext, host: string, acc: Acceptor) {
  const dp = nativeDp();
  const a = await client(t, host, acc);
  const sealedA = await new Promise<StreamConn>((resolve, reject) =>
    dp.dial({ address: host, port: acc.port, family: host.includes(':') ? 6 : 4 }, 2000, (err, c) => (err ? reject(err) : resolve(c!))),
  );
  const sealedB = await acc.take(sealedA.local.port);
  const b = await client(t, host, acc);
  const keys = testKeys(1, 0);
  const ends: Promise<PairEnd>[] = [];
  for (const [plain, sealed, k] of [
    [a.conn, sealedA, keys],
    [b.conn, sealedB, mirror(keys)],
  ] as const) {
    let endOf!: (e: PairEnd) => void;
    ends.push(new Promise<PairEnd>((r) => (endOf = r)));
    assert.ok(dp.pipeSealed(plain, sealed, k, 0, endOf), 'joined in the native datapath');
  }
  return { a: a.sock, b: b.sock, endA: ends[0]!, endB: ends[1]! };
}

function digest(s: net.Socket): Promise<{ bytes: number; sha: string }> {
  const h = createHash('sha256');
  let bytes = 0;
  s.on('data', (c: Buffer) => {
    bytes += c.length;
    h.update(c);
  });
  return once(s, 'end').then(() => ({ bytes, sha: h.digest('hex') }));
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('sealed pairs back to back: 20 MB each way byte-exact, a half-close each way, both pairs end clean', { skip }, async (t) => {
  const acc = await acceptor(t, '127.0.0.1');
  const c = await chain(t, '127.0.0.1', acc);
  const there = randomBytes(20 << 20);
  const back = randomBytes(20 << 20);
  const atB = digest(c.b);
  const atA = digest(c.a);
  c.a.end(there);
  // B sees all of A's bytes and A's FIN (an END record) while A still reads.
  assert.deepEqual(await atB, { bytes: there.length, sha: sha(there) });
  c.b.end(back);
  assert.deepEqual(await atA, { bytes: back.length, sha: sha(back) });
  const [endA, endB] = await Promise.all([c.endA, c.endB]);
  assert.deepEqual(endA, { reason: 'client-closed', bytesFromClient: there.length, bytesToClient: back.length });
  assert.deepEqual(endB, { reason: 'upstream-closed', bytesFromClient: back.length, bytesToClient: there.length });
});

test('sealed pairs back to back: key updates forced every 64 KiB both ways open correctly', { skip }, async (t) => {
  const dp = nativeDp();
  dp.setSealedLimits(5, 1 << 16);
  t.after(() => dp.setSealedLimits(2 ** 24, 2 ** 36));
  const acc = await acceptor(t, '::1');
  const c = await chain(t, '::1', acc);
  const there = randomBytes(3 << 20);
  const back = randomBytes(2 << 20);
  const atB = digest(c.b);
  const atA = digest(c.a);
  c.a.end(there);
  c.b.end(back);
  assert.deepEqual(await atB, { bytes: there.length, sha: sha(there) });
  assert.deepEqual(await atA, { bytes: back.length, sha: sha(back) });
  const [endA, endB] = await Promise.all([c.endA, c.endB]);
  assert.equal(endA.bytesFromClient + endB.bytesFromClient, there.length + back.length);
  assert.ok(endA.reason.endsWith('-closed') && endB.reason.endsWith('-closed'), `${endA.reason} ${endB.reason}`);
});

test('sealed pairs back to back: a reader that stalls holds the writer back without memory growing', { skip }, async (t) => {
  const acc = await acceptor(t, '127.0.0.1');
  const c = await chain(t, '127.0.0.1', acc);
  const chunk = randomBytes(1 << 20);
  const offered = 200 << 20;
  let written = 0;
  let lastMove = Date.now();
  const rssBefore = process.memoryUsage().rss;
  // B does not read: A writes a chunk each time the last one left Node, up to 200 MB, until 500 ms
  // pass without a drain (the chain is full).
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (written < offered) {
        written += chunk.length;
        lastMove = Date.now();
        if (!c.a.write(chunk)) return;
      }
      resolve();
    };
    c.a.on('drain', pump);
    pump();
    const check = setInterval(() => {
      if (Date.now() - lastMove > 500) {
        clearInterval(check);
        c.a.off('drain', pump);
        resolve();
      }
    }, 50);
  });
  const grown = process.memoryUsage().rss - rssBefore;
  assert.ok(written < 64 << 20, `the stalled chain took ${written} bytes`);
  assert.ok(grown < 8 << 20, `RSS grew by ${grown} bytes while ${offered - written} bytes waited`);
  // The reader resumes: everything accepted arrives.
  let got = 0;
  c.b.on('data', (d: Buffer) => void (got += d.length));
  const end = once(c.b, 'end');
  c.a.end();
  await end;
  assert.equal(got, written);
});

test('sealed pairs: 1,000 pairs opened and closed leave the descriptors at their baseline', { skip }, async (t) => {
  const acc = await acceptor(t, '127.0.0.1');
  const fds = () => readdirSync('/proc/self/fd').length;
  const one = async () => {
    const c = await chain(t, '127.0.0.1', acc);
    const atB = digest(c.b);
    const atA = digest(c.a);
    c.a.end('x');
    assert.equal((await atB).bytes, 1);
    c.b.end('y');
    assert.equal((await atA).bytes, 1);
    await Promise.all([c.endA, c.endB]);
    // Ended both ways, Node closes them itself: wait for that unless it happened already.
    const closed = Promise.all([c.a, c.b].map((s) => (s.closed ? undefined : once(s, 'close'))));
    c.a.destroy();
    c.b.destroy();
    await closed;
  };
  const round = () => Promise.all(Array.from({ length: 50 }, one));
  // The baseline after a first round: what earlier tests closed is gone by then.
  await round();
  const baseline = fds();
  for (let i = 0; i < 20; i++) await round();
  assert.equal(fds(), baseline);
});

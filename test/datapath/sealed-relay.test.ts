import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { relaySealed } from '../../src/datapath/sealed-relay.js';
import type { PairEnd } from '../../src/datapath/stream-datapath.js';
import { dataKeysFromMaterial, RecordSealer } from '../../src/protocol/tunnel/index.js';
import { waitFor } from '../helpers/net.js';

/**
 * The TypeScript sealed relay on real loopback sockets: client -- [gateway relay] == sealed TCP ==
 * [agent relay] -- server, and a gateway relay against a raw peer that forges, truncates or ends.
 */

async function socketPair(t: TestContext): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const a = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [[b]] = await Promise.all([accepted, once(a, 'connect')]);
  server.close();
  a.on('error', () => {});
  b.on('error', () => {});
  t.after(() => {
    a.destroy();
    b.destroy();
  });
  return [a, b];
}

function ended(): { promise: Promise<PairEnd>; onEnd: (e: PairEnd) => void } {
  let onEnd!: (e: PairEnd) => void;
  const promise = new Promise<PairEnd>((r) => (onEnd = r));
  return { promise, onEnd };
}

function collect(sock: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  sock.on('data', (d: Buffer) => parts.push(d));
  return once(sock, 'end').then(() => Buffer.concat(parts));
}

function resetSeen(sock: net.Socket): Promise<string | undefined> {
  return new Promise((resolve) => {
    sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code));
    sock.once('end', () => resolve('end'));
  });
}

async function chain(t: TestContext) {
  const material = randomBytes(56);
  const [client, plainG] = await socketPair(t);
  const [sealedG, sealedA] = await socketPair(t);
  const [plainA, server] = await socketPair(t);
  const g = ended();
  const a = ended();
  relaySealed(plainG, sealedG, dataKeysFromMaterial(material, 'gateway'), 0, g.onEnd);
  relaySealed(plainA, sealedA, dataKeysFromMaterial(material, 'agent'), 0, a.onEnd);
  return { client, server, gateway: g.promise, agent: a.promise };
}

test('sealed relay: bytes both ways, each direction half-closed on its own, counters of the plain sides', async (t) => {
  const { client, server, gateway, agent } = await chain(t);
  const up = randomBytes(3_000_000);
  const down = randomBytes(1_000_000);
  const atServer = collect(server);
  client.end(up);
  assert.deepEqual(await atServer, up, 'the server read everything, then the FIN');
  // The other direction still flows after the client's FIN.
  const atClient = collect(client);
  server.end(down);
  assert.deepEqual(await atClient, down);
  const [g, a] = await Promise.all([gateway, agent]);
  assert.deepEqual([g.reason, g.bytesFromClient, g.bytesToClient], ['client-closed', up.length, down.length]);
  assert.deepEqual([a.reason, a.bytesFromClient, a.bytesToClient], ['upstream-closed', down.length, up.length]);
});

test('sealed relay: a client reset reaches the server as a reset, and a server reset the client', async (t) => {
  {
    const { client, server, gateway, agent } = await chain(t);
    client.write('x');
    await once(server, 'data');
    const seen = resetSeen(server);
    client.resetAndDestroy();
    assert.equal(await seen, 'ECONNRESET');
    assert.equal((await gateway).reason, 'client-error');
    assert.equal((await agent).reason, 'upstream-error');
  }
  {
    const { client, server, gateway } = await chain(t);
    client.write('x');
    await once(server, 'data');
    const seen = resetSeen(client);
    server.resetAndDestroy();
    assert.equal(await seen, 'ECONNRESET');
    assert.equal((await gateway).reason, 'upstream-error');
  }
});

async function againstRaw(t: TestContext) {
  const material = randomBytes(56);
  const [client, plainG] = await socketPair(t);
  const [sealedG, raw] = await socketPair(t);
  const g = ended();
  relaySealed(plainG, sealedG, dataKeysFromMaterial(material, 'gateway'), 0, g.onEnd);
  const agentKeys = dataKeysFromMaterial(material, 'agent');
  return { client, raw, end: g.promise, sealer: new RecordSealer(agentKeys.sealKey, agentKeys.sealIv, agentKeys.sealSeq) };
}

test('sealed relay: a forged record, a FIN without END and a format error reset the plain side, with their codes', async (t) => {
  for (const [what, code] of [['forged', 'ESEALED_AUTH'], ['truncated', 'ESEALED_TRUNCATED'], ['format', 'ESEALED_FORMAT']] as const) {
    const { client, raw, end, sealer } = await againstRaw(t);
    const seen = resetSeen(client);
    const good = sealer.data(Buffer.from('fine'))[0]!;
    if (what === 'forged') {
      const bad = Buffer.from(good);
      bad[5]! ^= 0x40;
      raw.write(bad);
    } else if (what === 'truncated') {
      raw.end(good.subarray(0, 10));
    } else {
      raw.write(Buffer.from([9, 0, 0, 0]));
    }
    assert.equal(await seen, 'ECONNRESET', what);
    const e = await end;
    assert.deepEqual([e.reason, e.code], ['upstream-error', code], what);
  }
});

test('sealed relay: records then END reach the client as bytes then a FIN; the client FIN leaves as END', async (t) => {
  const { client, raw, end, sealer } = await againstRaw(t);
  const atClient = collect(client);
  raw.write(Buffer.concat([...sealer.data(Buffer.from('hello ')), ...sealer.data(Buffer.from('world')), sealer.end()]));
  assert.equal((await atClient).toString(), 'hello world');
  const fromRelay: Buffer[] = [];
  raw.on('data', (d: Buffer) => fromRelay.push(d));
  client.end();
  const e = await end;
  assert.deepEqual([e.reason, e.bytesToClient, e.bytesFromClient], ['upstream-closed', 11, 0]);
  await once(raw, 'end');
  assert.equal(Buffer.concat(fromRelay)[0], 2, 'an END record, then the close');
});

test('sealed relay: a server that does not read pauses the client side; nothing is buffered without bound', async (t) => {
  const material = randomBytes(56);
  const [client, plainG] = await socketPair(t);
  const [sealedG, sealedA] = await socketPair(t);
  const [plainA, server] = await socketPair(t);
  relaySealed(plainG, sealedG, dataKeysFromMaterial(material, 'gateway'), 0, () => {});
  relaySealed(plainA, sealedA, dataKeysFromMaterial(material, 'agent'), 0, () => {});
  server.pause();
  const block = Buffer.alloc(1 << 20, 1);
  let written = 0;
  const total = 64 << 20;
  const pump = () => {
    while (written < total && client.write(block)) written += block.length;
  };
  client.on('drain', () => {
    written += block.length;
    pump();
  });
  pump();
  await waitFor(() => plainG.isPaused() && plainA.writableLength > 0, 'the relays paused their readers');
  const stalled = plainG.bytesRead;
  assert.ok(stalled < total / 2, `the gateway side read ${stalled} of ${total} bytes while the server read nothing`);
  // Once the server reads, everything arrives.
  let got = 0;
  server.on('data', (d: Buffer) => (got += d.length));
  server.resume();
  await waitFor(() => got >= total, 'the rest arrived once the server read', 20_000);
});

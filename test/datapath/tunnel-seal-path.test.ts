import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { NativeSocketOpener, NativeSocketSealer } from '../../src/datapath/native/native-keys.js';
import { tunnelOpener, tunnelSealer } from '../../src/datapath/tunnel-keys.js';
import type { UdpListener } from '../../src/datapath/udp-datapath.js';
import { DatagramSealer, encodeOriginBlock, type Direction } from '../../src/protocol/tunnel/index.js';
import { udpClient, waitFor } from '../helpers/net.js';
import { startApp } from '../admin/app-helper.js';

// The key slots run ChaCha20-Poly1305 in Intel's ipsec-mb where the engine loaded it, else in
// OpenSSL through its provider's functions or through EVP (native/src/aead.h): every way must give
// the bytes of the TypeScript codecs (node:crypto), seal and open alike.

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 7) & 0xff));
const DIR: Direction = 'agent-to-gateway';
const ORIGIN4 = encodeOriginBlock({ serviceId: 2, client: { address: '192.0.2.9', port: 5353, family: 4 } });

type Way = 'ipsec-mb' | 'provider' | 'evp';
type SealPath = (engine: unknown, want?: Way) => [Way, string];

/** A datapath whose key slots take `way`; undefined (the test skipped) for ipsec-mb where it did not load, outside CI. */
function datapath(t: TestContext, way: Way): NativeDatapath | undefined {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout, {});
  t.after(() => dp.destroy());
  const sealPath = (loaded.binding as unknown as { sealPath: SealPath }).sealPath;
  assert.equal(typeof sealPath, 'function', 'the addon has sealPath');
  const [now, missing] = sealPath(dp.engine!.handle, way);
  if (way === 'ipsec-mb' && now !== way && process.env.CI !== 'true') {
    t.skip(`ipsec-mb not loaded: ${missing}`);
    return undefined;
  }
  assert.equal(now, way, way === 'ipsec-mb' ? `ipsec-mb in use (.ci/run installs libipsec-mb-dev): ${missing}` : `${way} on request`);
  return dp;
}

/** Payload sizes around the cipher's 64-byte blocks and Poly1305's 16-byte blocks, and a 1400-byte run. */
const SIZES = [0, 1, 15, 16, 17, 63, 64, 65, 500, 1400, 1400, 1400, 1400, 1399];

for (const way of ['ipsec-mb', 'provider', 'evp'] as const) {

  test(`native key slots through ${way}: sealed in the batch, byte for byte the js sealer's`, { skip }, async (t) => {
    const dp = datapath(t, way);
    if (!dp) return;
    const sender = await dp.listen('127.0.0.1', 0, { onDatagram: () => {}, onSendError: () => {} });
    t.after(() => sender.close());
    const client = await udpClient(t);
    const sealer = tunnelSealer(dp, { key: KEY, direction: DIR, peerKeyId: 0x0102 }, () => sender);
    assert.ok(sealer instanceof NativeSocketSealer && sealer.slot >= 0);
    t.after(() => sealer.release());
    const reference = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0x0102 });
    const expected = SIZES.map((n, i) => {
      const payload = Buffer.alloc(n, i + 1);
      const origin = i === 2 ? ORIGIN4 : undefined;
      sealer.sendData(9, payload, origin, client.port, '127.0.0.1');
      return reference.sealData(9, payload, origin);
    });
    await waitFor(() => client.inbox.length === expected.length, `${expected.length} datagrams (got ${client.inbox.length})`);
    for (let i = 0; i < expected.length; i++) assert.equal(client.inbox[i]!.toString('hex'), expected[i]!.toString('hex'), `datagram ${i}`);
  });

  test(`native key slots through ${way}: opened in the harvest; a forged tag and a replay are refused`, { skip }, async (t) => {
    const dp = datapath(t, way);
    if (!dp) return;
    const opener = tunnelOpener(dp, { key: KEY, direction: DIR, keyId: 0x0102, replayWindow: 64 });
    assert.ok(opener instanceof NativeSocketOpener);
    t.after(() => opener.release());
    const seen: string[] = [];
    const listener: UdpListener = await dp.listen('127.0.0.1', 0, {
      onDatagram: (buf) => {
        const r = opener.open(buf);
        seen.push(!r.ok ? r.reason : r.datagram.kind === 'data' ? `${r.datagram.sequence}:${r.datagram.payload.toString('hex')}` : r.datagram.kind);
      },
      onSendError: () => {},
    });
    t.after(() => listener.close());
    const client = await udpClient(t);
    const sealer = new DatagramSealer({ key: KEY, direction: DIR, peerKeyId: 0x0102 });
    const payloads = SIZES.map((n, i) => Buffer.alloc(n, 0x40 + i));
    const sealed = payloads.map((p) => sealer.sealData(5, p));
    const send = (b: Buffer) => client.send(listener.local.port, b);
    // The first binds the key to the socket (one call); the rest open in the harvest.
    send(sealed[0]!);
    await waitFor(() => seen.length === 1, 'first');
    const forged = Buffer.from(sealed[1]!);
    forged[20]! ^= 0x80; // a ciphertext byte (or the tag, for an empty payload)
    send(forged);
    for (const b of sealed.slice(1)) send(b);
    send(sealed[3]!);
    await waitFor(() => seen.length === sealed.length + 2, `all (got ${seen.length})`);
    const want = ['0:', 'auth-failed', ...payloads.slice(1).map((p, i) => `${i + 1}:${p.toString('hex')}`), 'replayed'];
    want[0] = `0:${payloads[0]!.toString('hex')}`;
    assert.deepEqual(seen, want);
  });
}

test('datagram cipher: /api/health names it beside the native UDP datapath (ipsec-mb under CI), and not on the js one', { skip }, async (t) => {
  const yaml = (datapath: string) => `
datapath: ${datapath}
routes:
  dns: { listen: udp://127.0.0.1:0, upstream: 127.0.0.1:9 }
accessLog: { output: off }
`;
  const native = await startApp(t, yaml('native'));
  const cipher = native.app.ops.status().datagramCipher;
  const dp = new NativeDatapath(loaded.ok ? loaded.binding : (undefined as never), loaded.ok ? loaded.layout : (undefined as never), {});
  const info = dp.datagramCipher();
  dp.destroy();
  assert.equal(cipher, info.cipher);
  if (process.env.CI === 'true') assert.equal(cipher, 'ipsec-mb', `ipsec-mb in use (.ci/run installs libipsec-mb-dev): ${info.missing}`);
  await native.stop();
  const js = await startApp(t, yaml('js'));
  assert.equal(js.app.ops.status().datagramCipher, undefined);
});

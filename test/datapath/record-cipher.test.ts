import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { RecordCipherInfo, RecordCipherName } from '../../src/datapath/stream-datapath.js';
import { startApp } from '../admin/app-helper.js';
import { DATA, KEY_UPDATE, RecordReader, acceptedConn, farEnd, nativeDp, seal, skip, testKeys, type DirKey } from './sealed-harness.js';

// The records of sealed pairs and trunks run AES-128-GCM in Intel's ipsec-mb where the addon loaded
// it, else in Node's OpenSSL (native/src/sealed-record.h). Both must give the bytes node:crypto
// gives, seal and open alike, with key updates, and refuse a forged tag.

/** Plaintext sizes around AES's 16-byte blocks, ipsec-mb's 256- and 512-byte strides, and up to a whole record. */
const SIZES = [1, 15, 16, 17, 255, 256, 257, 1400, 4096, 32768, 65536];

function cipherOf(): { use: (c: RecordCipherName) => RecordCipherName; info: () => RecordCipherInfo } {
  const dp = nativeDp();
  return { use: (c) => dp.recordCipher(c).cipher, info: () => dp.recordCipher() };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A sealed pair keyed under `cipher` (the engine goes back to ipsec-mb where it has it, after the test). */
async function pairWith(t: TestContext, cipher: RecordCipherName) {
  const dp = nativeDp();
  const c = cipherOf();
  const loaded = c.info().missing === '';
  t.after(() => void c.use('ipsec-mb'));
  assert.equal(c.use(cipher), cipher === 'ipsec-mb' && !loaded ? 'openssl' : cipher);
  const plain = await acceptedConn(t, '127.0.0.1');
  const sealed = await acceptedConn(t, '127.0.0.1');
  const keys = testKeys(5, 9);
  let ended!: (code: string | undefined) => void;
  const end = new Promise<string | undefined>((r) => (ended = r));
  assert.ok(dp.pipeSealed(plain.conn, sealed.conn, keys, 0, (e) => ended(e.code)), 'joined');
  const raw: Buffer[] = [];
  sealed.peer.on('data', (b: Buffer) => raw.push(b));
  return { client: plain.peer, far: sealed.peer, raw, keys, end };
}

/**
 * Writes each size, the next only once the last was opened, and returns the sealed bytes. Sizes of
 * at most 32 KiB: loopback TCP hands each write to one read, so both ciphers get the same records.
 */
async function sealSizes(t: TestContext, cipher: RecordCipherName): Promise<Buffer> {
  const p = await pairWith(t, cipher);
  const reader = new RecordReader(farEnd(p.keys).reads);
  p.far.on('data', (b: Buffer) => reader.push(b));
  let total = 0;
  for (const [i, n] of SIZES.filter((n) => n <= 32768).entries()) {
    p.client.write(Buffer.alloc(n, i + 1));
    total += n;
    await until(() => reader.plaintext().length === total, `record ${i}`);
  }
  return Buffer.concat(p.raw);
}

for (const cipher of ['ipsec-mb', 'openssl'] as const) {
  test(`record cipher ${cipher}: sealed records are node:crypto's bytes, key updates included`, { skip }, async (t) => {
    const dp = nativeDp();
    dp.setSealedLimits(4, 2 ** 36);
    t.after(() => dp.setSealedLimits(2 ** 24, 2 ** 36));
    const p = await pairWith(t, cipher);
    const reader = new RecordReader(farEnd(p.keys).reads);
    p.far.on('data', (b: Buffer) => reader.push(b));
    let total = 0;
    for (const [i, n] of SIZES.entries()) {
      p.client.write(Buffer.alloc(n, i + 1));
      total += n;
      await until(() => reader.plaintext().length === total, `record ${i}`);
    }
    // Sealed again from the plaintexts node:crypto opened, with the same keys: the same bytes.
    const ref: DirKey = farEnd(p.keys).reads;
    const expected = Buffer.concat(reader.records.map((r) => seal(ref, r.type, r.plain)));
    assert.ok(reader.records.some((r) => r.type === KEY_UPDATE), 'a key update happened');
    assert.deepEqual(Buffer.concat(p.raw), expected);
  });

  test(`record cipher ${cipher}: records node:crypto sealed open (across a key update); a forged tag ends the pair`, { skip }, async (t) => {
    const p = await pairWith(t, cipher);
    const got: Buffer[] = [];
    p.client.on('data', (b: Buffer) => got.push(b));
    const w = farEnd(p.keys).writes;
    const plains = SIZES.map((n, i) => Buffer.alloc(n, 0x40 + i));
    for (const [i, plain] of plains.entries()) {
      p.far.write(seal(w, DATA, plain));
      if (i === 4) p.far.write(seal(w, KEY_UPDATE));
    }
    const want = Buffer.concat(plains);
    await until(() => Buffer.concat(got).length === want.length, 'all plaintext');
    assert.deepEqual(Buffer.concat(got), want);
    const forged = seal(w, DATA, Buffer.from('forged'));
    forged[forged.length - 1]! ^= 1;
    p.far.write(forged);
    assert.equal(await p.end, 'ESEALED_AUTH');
  });
}

test('record cipher: ipsec-mb and OpenSSL seal the same records to the same bytes', { skip }, async (t) => {
  const c = cipherOf();
  if (c.info().missing !== '') return t.skip(`ipsec-mb not loaded: ${c.info().missing}`);
  const a = await sealSizes(t, 'ipsec-mb');
  const b = await sealSizes(t, 'openssl');
  assert.ok(a.length > 0);
  assert.equal(a.length, b.length);
  assert.ok(a.equals(b), 'byte for byte');
});

test('record cipher: ipsec-mb is the one in use (required under CI=true, where .ci/run installs libipsec-mb-dev)', { skip }, (t) => {
  const info = cipherOf().info();
  if (info.cipher !== 'ipsec-mb') {
    if (process.env.CI === 'true') assert.fail(`sealed records use OpenSSL, not ipsec-mb: ${info.missing}`);
    process.stderr.write(`\n*** ipsec-mb NOT IN USE: ${info.missing}; sealed records use OpenSSL (install libipsec-mb-dev, then node native/build.mjs) ***\n\n`);
    return t.skip(`ipsec-mb absent: ${info.missing}`);
  }
  assert.notEqual(info.arch, '');
});

test('record cipher: /api/health names it beside the native stream datapath, and not on the js one', { skip }, async (t) => {
  const yaml = (datapath: string) => `
datapath: ${datapath}
routes:
  web: { listen: tcp://127.0.0.1:0, upstream: 127.0.0.1:9 }
accessLog: { output: off }
`;
  const native = await startApp(t, yaml('native'));
  const status = native.app.ops.status();
  assert.equal(status.streamDatapath, 'native');
  assert.equal(status.recordCipher, cipherOf().info().cipher);
  await native.stop();
  const js = await startApp(t, yaml('js'));
  assert.equal(js.app.ops.status().streamDatapath, 'js');
  assert.equal(js.app.ops.status().recordCipher, undefined);
});

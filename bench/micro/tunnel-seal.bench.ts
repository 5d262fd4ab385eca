// Tunnel datagram sealing and opening per second: node dist/bench/micro/tunnel-seal.bench.js
// One scenario per line, printed as key=value so runs can be diffed. No sockets, except the
// native-batch scenarios, which seal into the native datapath's staging memory and send each
// flush of 512 to a local UDP socket (the same send path for js-sealed and C++-sealed).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { tunnelOpener, tunnelSealer } from '../../src/datapath/tunnel-keys.js';
import {
  ControlFrameReader, DatagramOpener, DatagramSealer, encodeControlMessage, encodeOriginBlock,
} from '../../src/protocol/tunnel/index.js';
import { preferAead } from '../../src/protocol/tunnel/aead.js';

const KEY = randomBytes(32);
const BATCH = 4096;
const MS = Number(process.env.BENCH_MS ?? 1000);

function report(scenario: string, bytes: number, ops: number, ms: number): void {
  const perSec = Math.round((ops / ms) * 1000);
  const mbps = ((ops * bytes * 8) / (ms / 1000) / 1e6).toFixed(0);
  console.log(`bench=tunnel-seal scenario=${scenario} payload_bytes=${bytes} ops_per_sec=${perSec} ns_per_op=${((ms * 1e6) / ops).toFixed(0)} payload_mbit_per_sec=${mbps}`);
}

function seal(bytes: number, withOrigin: boolean): void {
  const sealer = new DatagramSealer({ key: KEY, direction: 'gateway-to-agent', peerKeyId: 1 });
  const payload = randomBytes(bytes);
  const origin = withOrigin ? encodeOriginBlock({ serviceId: 1, client: { address: '198.51.100.7', port: 40000, family: 4 } }) : undefined;
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < MS) {
    for (let i = 0; i < BATCH; i++) sealer.sealData(1 + (i & 7), payload, origin);
    n += BATCH;
    now = performance.now();
  }
  report(withOrigin ? 'seal-with-origin' : 'seal', bytes, n, now - start);
}

function open(bytes: number): void {
  const sealer = new DatagramSealer({ key: KEY, direction: 'gateway-to-agent', peerKeyId: 1 });
  const payload = randomBytes(bytes);
  const sealed = Array.from({ length: BATCH }, (_, i) => sealer.sealData(1 + (i & 7), payload));
  let n = 0;
  let ok = 0;
  const start = performance.now();
  let now = start;
  while (now - start < MS) {
    const opener = new DatagramOpener({ key: KEY, direction: 'gateway-to-agent', keyId: 1 }); // fresh window per pass over the batch
    for (let i = 0; i < BATCH; i++) if (opener.open(sealed[i]!).ok) ok++;
    n += BATCH;
    now = performance.now();
  }
  if (ok !== n) throw new Error(`only ${ok} of ${n} opened`);
  report('open', bytes, n, now - start);
}

/** Drops: a forged tag (full AEAD work, then refused) and a replay or wrong key id (refused before crypto). */
function reject(kind: 'forged' | 'replayed' | 'unknown-key', bytes: number): void {
  const sealer = new DatagramSealer({ key: KEY, direction: 'gateway-to-agent', peerKeyId: 1 });
  const d = sealer.sealData(1, randomBytes(bytes));
  if (kind === 'forged') d[d.length - 1]! ^= 1;
  const opener = new DatagramOpener({ key: KEY, direction: 'gateway-to-agent', keyId: kind === 'unknown-key' ? 2 : 1 });
  if (kind === 'replayed') opener.open(d);
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < MS) {
    for (let i = 0; i < BATCH; i++) if (opener.open(d).ok) throw new Error('opened');
    n += BATCH;
    now = performance.now();
  }
  report(`reject-${kind}`, bytes, n, now - start);
}

/** STREAM_DATA frames of 16 KiB through encode and the frame reader, for comparison with the UDP path. */
function streamFrames(): void {
  const frame = encodeControlMessage({ type: 'stream-data', streamId: 2, data: randomBytes(16_384) });
  const reader = new ControlFrameReader();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < MS) {
    for (let i = 0; i < 256; i++) n += reader.push(frame).length;
    now = performance.now();
  }
  report('stream-data-decode', 16_384, n, now - start);
}

/**
 * The native datapath: `native-batch-seal` stages datagrams with NativeSocketSealer.sendData and the
 * flush seals them in C++ (OpenSSL) then sends; `js-seal-native-send` seals each in JavaScript and
 * stages the sealed copy, through the same flush. `native-open-one` opens one datagram per N-API
 * call (the path of a datagram not opened in the harvest).
 */
async function nativeBatch(bytes: number): Promise<void> {
  const loaded = loadNativeBinding();
  if (!loaded.ok) {
    console.log(`bench=tunnel-seal scenario=native-batch skipped="${loaded.reason}"`);
    return;
  }
  const dp = new NativeDatapath(loaded.binding, loaded.layout);
  const sink = dgram.createSocket('udp4');
  sink.bind(0, '127.0.0.1');
  await once(sink, 'listening');
  const port = sink.address().port;
  const listener = await dp.listen('127.0.0.1', 0, { onDatagram: () => {}, onSendError: () => {} });
  const payload = randomBytes(bytes);
  const RUN = 512;
  for (const scenario of ['native-batch-seal', 'js-seal-native-send'] as const) {
    const sealer = tunnelSealer(dp, { key: KEY, direction: 'gateway-to-agent', peerKeyId: 1 }, () => listener);
    let n = 0;
    const start = performance.now();
    let now = start;
    while (now - start < MS) {
      for (let i = 0; i < RUN; i++) {
        if (scenario === 'native-batch-seal') sealer.sendData(1 + (i & 7), payload, undefined, port, '127.0.0.1');
        else listener.send(sealer.sealData(1 + (i & 7), payload), port, '127.0.0.1');
      }
      dp.flush();
      n += RUN;
      now = performance.now();
    }
    sealer.release();
    report(scenario, bytes, n, now - start);
  }
  const sealer = new DatagramSealer({ key: KEY, direction: 'gateway-to-agent', peerKeyId: 1 });
  const sealed = Array.from({ length: BATCH }, (_, i) => sealer.sealData(1 + (i & 7), payload));
  const copies = sealed.map((b) => Buffer.from(b));
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < MS) {
    const opener = tunnelOpener(dp, { key: KEY, direction: 'gateway-to-agent', keyId: 1 });
    for (let i = 0; i < BATCH; i++) {
      sealed[i]!.set(copies[i]!); // opened in place: restore the sealed bytes
      if (!opener.open(sealed[i]!).ok) throw new Error('did not open');
    }
    opener.release();
    n += BATCH;
    now = performance.now();
  }
  report('native-open-one', bytes, n, now - start);
  await listener.close();
  dp.destroy();
  sink.close();
}

export async function main(): Promise<void> {
  for (const bytes of [64, 1400]) {
    seal(bytes, false);
    open(bytes);
  }
  seal(64, true);
  reject('forged', 64);
  reject('replayed', 64);
  reject('unknown-key', 64);
  streamFrames();
  for (const bytes of [64, 1400]) await nativeBatch(bytes);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.env.SLUICE_AEAD === 'node') preferAead('node'); // the node:crypto column
  void main();
}

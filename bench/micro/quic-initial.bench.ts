// QUIC Initial reads per second: node dist/bench/micro/quic-initial.bench.js
// One scenario per line, printed as key=value so runs can be diffed. No sockets. The cost of
// deciding a new QUIC client on a shared UDP address: key derivation, header protection removal,
// AES-GCM opening, CRYPTO reassembly and the ClientHello parse.
import { QUIC_V1 } from '../../src/protocol/quic/initial-keys.js';
import { QuicInitialReader } from '../../src/protocol/quic/initial-reader.js';
import { RFC_CRYPTO_FRAME, RFC_PADDING, RFC_DCID } from '../../test/protocol/quic/fixtures/rfc-vectors.js';
import { cryptoFrame, sealInitial, stripRecords } from '../../test/protocol/quic/initial-builder.js';
import { recordedHellos } from '../../test/protocol/tls/hello-builder.js';

function run(name: string, datagrams: Buffer[], ms = 500): void {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 50; i++) {
      const r = new QuicInitialReader();
      let last;
      for (const d of datagrams) last = r.push(d);
      if (last?.kind !== 'done') throw new Error(`${name}: ${JSON.stringify(last)}`);
    }
    n += 50;
    now = performance.now();
  }
  const us = ((now - start) * 1000) / n;
  console.log(`scenario=${name} datagrams=${datagrams.length} us_per_client=${us.toFixed(2)} clients_per_s=${Math.round(n / ((now - start) / 1000))}`);
}

const dcid = Buffer.from(RFC_DCID, 'hex');
run('rfc9001-a2', [sealInitial({ version: QUIC_V1, dcid, packetNumber: 2, payload: Buffer.concat([Buffer.from(RFC_CRYPTO_FRAME, 'hex'), Buffer.alloc(RFC_PADDING)]) })]);
const chromium = stripRecords(recordedHellos().get('chromium')!);
const half = 1000;
const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc(Math.max(0, 1160 - b.length))]);
run('chromium-2-initials', [
  sealInitial({ version: QUIC_V1, dcid, packetNumber: 0, payload: pad(cryptoFrame(0, chromium.subarray(0, half))) }),
  sealInitial({ version: QUIC_V1, dcid, packetNumber: 1, payload: pad(cryptoFrame(half, chromium.subarray(half))) }),
]);

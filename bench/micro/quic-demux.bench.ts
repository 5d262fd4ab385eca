// Pinned QUIC datagrams per second through the demux of a shared UDP address: node dist/bench/micro/quic-demux.bench.js
// One scenario per line, printed as key=value so runs can be diffed. No sockets. The per-datagram
// cost of finding a pinned client's connection (docs/sni.md, "Connection IDs"): one connection on
// the address (the usual case), and two connections on one address (short headers looked up by ID).
// DEMUX_MODULE=<path of a compiled quic-demux.js> measures another build with the same scenarios.
import { EventStream } from '../../src/observe/events.js';
import { systemClock } from '../../src/core/clock.js';
import type { QuicMember } from '../../src/listen/quic-demux.js';
import { QUIC_V1 } from '../../src/protocol/quic/initial-keys.js';
import { clientHelloMessage } from '../../test/protocol/tls/hello-builder.js';
import { cryptoFrame, sealInitial } from '../../test/protocol/quic/initial-builder.js';

const mod = (await import(process.env.DEMUX_MODULE ?? '../../src/listen/quic-demux.js')) as typeof import('../../src/listen/quic-demux.js');
let delivered = 0;
const member = (sni: string): QuicMember => ({
  config: { match: { sni: [sni] } },
  receiver: { onDatagram: () => void delivered++, onDatagramV4: () => void delivered++, onSendError: () => {} },
});
const initial = (name: string, dcid: number) => {
  const frame = cryptoFrame(0, clientHelloMessage({ serverName: name }));
  return sealInitial({ version: QUIC_V1, dcid: Buffer.alloc(8, dcid), scid: Buffer.from([dcid]), packetNumber: 0, payload: Buffer.concat([frame, Buffer.alloc(1100 - frame.length)]) });
};
const short = Buffer.concat([Buffer.from([0x41]), Buffer.alloc(8, 0x77), Buffer.alloc(1200, 0x11)]);

function run(name: string, connections: number, ms = 500): void {
  const demux = new mod.QuicDemux('udp://127.0.0.1:443', { clock: systemClock, events: new EventStream(), pinIdleMs: () => 30_000 });
  demux.join(member('a.test'));
  demux.join(member('b.test'));
  const ip = 0x7f000001;
  for (let c = 0; c < connections; c++) demux.onDatagram(initial(c === 0 ? 'a.test' : 'b.test', 0x10 + c), '127.0.0.1', 5000);
  delivered = 0;
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 10_000; i++) demux.onDatagramV4(short, ip, 5000);
    n += 10_000;
    now = performance.now();
  }
  if (delivered !== n) throw new Error(`${name}: ${delivered} of ${n} delivered`);
  demux.close();
  console.log(`scenario=${name} ns_per_datagram=${(((now - start) * 1e6) / n).toFixed(1)} datagrams_per_s=${Math.round(n / ((now - start) / 1000))}`);
}

run('pinned-short-1-conn', 1);
run('pinned-short-2-conns', 2);

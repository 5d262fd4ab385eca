// ClientHello reads per second: node dist/bench/micro/client-hello.bench.js
// One scenario per line, printed as key=value so runs can be diffed. No sockets. Uses the
// ClientHellos recorded in test/protocol/tls/fixtures (Chromium's carries a post-quantum key share).
import { ClientHelloReader } from '../../src/protocol/tls/client-hello.js';
import { recordedHellos } from '../../test/protocol/tls/hello-builder.js';

function run(name: string, wire: Buffer, segment: number, ms = 500): void {
  const pieces: Buffer[] = [];
  for (let at = 0; at < wire.length; at += segment) pieces.push(wire.subarray(at, at + segment));
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 100; i++) {
      const r = new ClientHelloReader();
      let last;
      for (const p of pieces) last = r.push(p);
      if (last?.kind !== 'done') throw new Error(`${name}: ${JSON.stringify(last)}`);
    }
    n += 100;
    now = performance.now();
  }
  const us = ((now - start) * 1000) / n;
  console.log(`scenario=${name} bytes=${wire.length} segment=${segment} us_per_hello=${us.toFixed(2)} hellos_per_s=${Math.round(n / ((now - start) / 1000))}`);
}

const hellos = recordedHellos();
for (const name of ['chromium', 'curl-resolve']) {
  const wire = hellos.get(name)!;
  run(`${name}-whole`, wire, wire.length);
  run(`${name}-1460`, wire, 1460);
  run(`${name}-1byte`, wire, 1);
}

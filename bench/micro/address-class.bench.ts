// Address classification and per-source keys: node dist/bench/micro/address-class.bench.js
// One scenario per line, printed as key=value so runs can be diffed. No sockets.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { classifyAddress } from '../../src/admission/address-class.js';
import { sourceKey } from '../../src/admission/source-key.js';
import { formatIpv4 } from '../../src/core/ip-value.js';
import { classifyPeer } from '../../src/udpexposer/peer-policy.js';

function addresses(count: number, v6: boolean): string[] {
  let x = 11;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 22695477) + 1) >>> 0;
    out.push(v6 ? `2001:${(x >>> 16).toString(16)}:${(x & 0xffff).toString(16)}:${i.toString(16)}::${(x & 0xfff).toString(16)}` : formatIpv4(x));
  }
  return out;
}

function run(name: string, items: readonly string[], fn: (s: string) => number, ms = 500): void {
  let n = 0;
  let sink = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < items.length; i++) sink += fn(items[i]!);
    n += items.length;
    now = performance.now();
  }
  console.log(`bench=address-class scenario=${name} ops_per_sec=${Math.round((n / (now - start)) * 1000)} ns_per_op=${(((now - start) * 1e6) / n).toFixed(0)} sink=${sink % 7}`);
}

export function main(): void {
  const v4 = addresses(4096, false);
  const v6 = addresses(4096, true);
  // The udpexposer server's per-datagram check (canonicalIp + classification).
  run('peer-ipv4', v4, (a) => classifyPeer(a, 5).length);
  run('peer-ipv6', v6, (a) => classifyPeer(a, 5).length);
  run('classify-ipv4', v4, (a) => classifyAddress(a).length);
  // Once per new session or connection.
  run('source-key-ipv4', v4, (a) => sourceKey({ address: a, family: 4 }).length);
  run('source-key-ipv6-64', v6, (a) => sourceKey({ address: a, family: 6 }).length);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) main();

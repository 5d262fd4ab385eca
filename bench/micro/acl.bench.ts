// ACL checks per second: node dist/bench/micro/acl.bench.js
// One scenario per line, printed as key=value so runs can be diffed. No sockets.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileAcl, type AclPolicy } from '../../src/admission/acl/acl-policy.js';
import { openCountryDatabase } from '../../src/admission/acl/country.js';
import { formatIpv4, parseIpValue } from '../../src/core/ip-value.js';

// ../shared sits beside the repository; this file runs from dist/bench/micro.
const GEO_DB = process.env.SLUICE_GEOIP_DB ?? fileURLToPath(new URL('../../../../shared/vectors/geoip/GeoLite2-Country-Test.mmdb', import.meta.url));

/** `count` pseudo-random rules, /8 to /32, deterministic. */
function rules(count: number, seed = 1): string[] {
  let x = seed;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const p = 8 + (x % 25);
    out.push(`${formatIpv4((x & (0xffffffff << (32 - p))) >>> 0)}/${p}`);
  }
  return out;
}

function addresses(count: number): string[] {
  let x = 7;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 22695477) + 1) >>> 0;
    if (i % 4 === 3) out.push(`2002:${(x >>> 16).toString(16)}:${(x & 0xffff).toString(16)}::1`);
    else out.push(formatIpv4(x));
  }
  return out;
}

function run(name: string, acl: AclPolicy, ips: readonly string[], ms = 500): void {
  let n = 0;
  let denied = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < ips.length; i++) if (acl.check(ips[i]!) !== undefined) denied++;
    n += ips.length;
    now = performance.now();
  }
  const perSec = Math.round((n / (now - start)) * 1000);
  console.log(`bench=acl scenario=${name} checks_per_sec=${perSec} ns_per_check=${((now - start) * 1e6 / n).toFixed(0)} denied_ratio=${(denied / n).toFixed(3)}`);
}

export async function main(): Promise<void> {
  const ips = addresses(4096);
  run('deny-10', compileAcl({ deny: rules(10) }), ips);
  run('deny-10k', compileAcl({ deny: rules(10_000) }), ips);
  run('allow-1k+deny-1k', compileAcl({ allow: rules(1000, 3), deny: rules(1000, 5) }), ips);
  const geo = await openCountryDatabase(GEO_DB);
  run('countries-allow+deny-1k', compileAcl({ deny: rules(1000), countries: { allow: ['GB', 'US', 'JP'], deny: ['CN'] } }, geo), ips);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < 500) {
    for (const ip of ips) if (parseIpValue(ip)) n++;
  }
  console.log(`bench=acl scenario=parse-only parses_per_sec=${Math.round((n / (performance.now() - start)) * 1000)}`);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

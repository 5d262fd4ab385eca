// Cost of an idle UDP port range on the native datapath, and per-datagram cost vs one port:
//   node --expose-gc dist/bench/micro/port-range.bench.js [ports...]   (default: 1000 10000)
// One process per size is cleanest (RSS only grows): the script runs each size in a child.
// Printed as key=value. Uses 127.0.0.1 only; the range is found by trying random bases.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { EventStream } from '../../src/observe/events.js';
import { RouteSet } from '../../src/root/route-set.js';
import { DirectStreamDialer } from '../../src/upstream/direct/tcp-dialer.js';
import { DirectDatagramDialer } from '../../src/upstream/direct/udp-dialer.js';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';

const fds = () => readdirSync('/proc/self/fd').length;
const rssMb = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / 2 ** 20;
};

async function start(dp: NativeDatapath, ports: number, upstreamPort: number) {
  for (let tries = 0; tries < 20; tries++) {
    const base = 10_000 + Math.floor(Math.random() * (31_000 - 10_000 - ports));
    const listen = ports > 1 ? `${base}-${base + ports - 1}` : `${base}`;
    const r = parseConfig(`routes:\n  r:\n    listen: "udp://127.0.0.1:${listen}"\n    upstream: 127.0.0.1:${upstreamPort}\n    udp: { rate: { perSecond: 0, burst: 0 }, ratePerSource: { perSecond: 0, burst: 0 } }\n`);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const t0 = performance.now();
    try {
      const node = await RouteSet.start(r.config, { clock: systemClock, events: new EventStream(), streamDialer: new DirectStreamDialer(), datagramDialer: new DirectDatagramDialer(undefined, dp), udpDatapath: dp });
      return { node, base, ms: performance.now() - t0 };
    } catch (err) {
      if (!/EADDRINUSE/.test(String((err as Error).message))) throw err;
    }
  }
  throw new Error('no free range');
}

/** Datagrams per second one client gets echoed through port `port` (in flight window of 32, bounded in time). */
async function echoRate(port: number, ms = 1500): Promise<number> {
  const c = dgram.createSocket('udp4');
  c.bind(0, '127.0.0.1');
  await once(c, 'listening');
  const payload = Buffer.alloc(64);
  let got = 0;
  const end = performance.now() + ms;
  await new Promise<void>((resolve) => {
    c.on('message', () => {
      got++;
      if (performance.now() < end) c.send(payload, port, '127.0.0.1');
      else resolve();
    });
    for (let i = 0; i < 32; i++) c.send(payload, port, '127.0.0.1');
    setTimeout(resolve, ms + 1000);
  });
  c.close();
  return got / (ms / 1000);
}

async function one(ports: number): Promise<void> {
  const loaded = loadNativeBinding();
  if (!loaded.ok) throw new Error(`native datapath unavailable: ${loaded.reason}`);
  const dp = new NativeDatapath(loaded.binding, loaded.layout);
  const echo = dgram.createSocket('udp4');
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  echo.bind(0, '127.0.0.1');
  await once(echo, 'listening');
  const [rss0, fd0] = [rssMb(), fds()];
  const { node, base, ms } = await start(dp, ports, echo.address().port);
  const [rss1, fd1] = [rssMb(), fds()];
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 3000));
  const cpu = process.cpuUsage(cpu0);
  const idleCpuPct = ((cpu.user + cpu.system) / 1000 / 3000) * 100;
  const rate = await echoRate(base + Math.floor(ports / 2));
  console.log(
    `ports=${ports} start_ms=${ms.toFixed(0)} rss_mb=${(rss1 - rss0).toFixed(1)} kb_per_port=${(((rss1 - rss0) * 1024) / ports).toFixed(2)} fds=${fd1 - fd0} fds_per_port=${((fd1 - fd0) / ports).toFixed(3)} idle_cpu_pct=${idleCpuPct.toFixed(1)} echo_per_s=${rate.toFixed(0)}`,
  );
  await node.destroy();
  echo.close();
  dp.destroy();
}

const arg = process.argv[2];
if (arg === '--one') {
  await one(Number(process.argv[3]));
} else {
  const sizes = process.argv.slice(2).map(Number);
  for (const n of sizes.length ? sizes : [1, 1000, 10000]) {
    const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--one', String(n)], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}

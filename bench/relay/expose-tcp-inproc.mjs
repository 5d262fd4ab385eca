// The exposed TCP path in one process: a gateway and an agent (the test suites' real ones, built
// from ROOT/dist), a sink and an echo server, and the load generator, all on one event loop, so
// the CPU time per MB or per connection does not depend on how other tenants of a busy machine
// schedule the generator against the relay (bench/relay/expose-tcp.sh measures separate
// processes; this is for A/B comparisons of builds where that is too noisy). The generator's
// and the servers' own cost is included: compare builds, not these figures with nginx.
//   node bench/relay/expose-tcp-inproc.mjs ROOT [ROOT2 ...]       (ROUNDS=3 MB=400 CONNS=4000)
// Each root and round runs in a child process of its own, alternating.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { pathToFileURL } from 'node:url';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const MB = Number(process.env.MB ?? 400);
const CONNS = Number(process.env.CONNS ?? 4000);
const CONCURRENCY = 32;

if (process.argv[2] === '--child') await child(process.argv[3]);
else {
  const roots = process.argv.slice(2);
  if (roots.length === 0) throw new Error('usage: node bench/relay/expose-tcp-inproc.mjs ROOT [ROOT2 ...]');
  for (let r = 1; r <= ROUNDS; r++) {
    for (const root of roots) {
      const out = spawnSync(process.execPath, [process.argv[1], '--child', root], { encoding: 'utf8', env: { ...process.env, SLUICE_TEST_DATAPATH: 'native' }, timeout: 180_000 });
      process.stdout.write(`${root.padEnd(28)} r${r} ${out.stdout.trim() || out.stderr.trim().split('\n').slice(-3).join(' | ')}\n`);
    }
  }
}

async function child(root) {
  const h = await import(pathToFileURL(`${root}/dist/test/gateway/expose-helpers.js`).href);
  const cleanups = [];
  const t = { after: (fn) => cleanups.push(fn), diagnostic() {} };
  const sink = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', () => {});
    s.on('end', () => s.end());
  });
  const echo = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  for (const srv of [sink, echo]) {
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
  }
  const gw = await h.startGateway(t, h.gatewayConfig('  maxStreamsPerAgent: 100000\n  services:\n    tcp: { idleTimeout: 120s, maxConnections: 0, maxConnectionsPerSource: 0 }\n'));
  const { agent } = await h.startAgent(
    t,
    h.agentConfig(
      gw,
      `    sink: { local: 127.0.0.1:${sink.address().port}, remote: tcp://127.0.0.1:0 }\n    echo: { local: 127.0.0.1:${echo.address().port}, remote: tcp://127.0.0.1:0 }`,
    ),
  );
  const ports = await h.published(agent);

  // Bulk: one connection, 64 KiB writes with backpressure, until the sink has MB megabytes.
  const chunk = Buffer.alloc(64 * 1024, 7);
  const total = MB * 1024 * 1024;
  const c = net.connect(ports.sink, '127.0.0.1');
  await once(c, 'connect');
  let cpu0 = process.cpuUsage();
  let wall0 = performance.now();
  for (let sent = 0; sent < total; sent += chunk.length) if (!c.write(chunk)) await once(c, 'drain');
  c.end();
  await once(c, 'close');
  let cpu = process.cpuUsage(cpu0);
  const bulkMbPerCpuS = MB / ((cpu.user + cpu.system) / 1e6);
  const bulkWall = (performance.now() - wall0) / 1000;

  // Connections: CONCURRENCY loops of connect, 32 bytes, their echo, close.
  const req = Buffer.alloc(32, 1);
  let done = 0;
  let started = 0;
  const one = () =>
    new Promise((resolve, reject) => {
      const s = net.connect({ port: ports.echo, host: '127.0.0.1', allowHalfOpen: true });
      let got = 0;
      s.on('connect', () => s.write(req));
      s.on('data', (b) => {
        got += b.length;
        if (got >= 32) s.end();
      });
      s.on('error', reject);
      s.on('close', () => (got >= 32 ? resolve() : reject(new Error('no echo'))));
    });
  const loop = async () => {
    while (started < CONNS) {
      started++;
      await one();
      done++;
    }
  };
  cpu0 = process.cpuUsage();
  wall0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  cpu = process.cpuUsage(cpu0);
  const connsPerCpuS = done / ((cpu.user + cpu.system) / 1e6);
  const connWall = (performance.now() - wall0) / 1000;
  console.log(`bulk ${bulkMbPerCpuS.toFixed(0)} MB/cpu-s (${(MB / bulkWall).toFixed(0)} MB/s)  conns ${connsPerCpuS.toFixed(0)}/cpu-s (${(done / connWall).toFixed(0)}/s)`);
  for (const fn of cleanups.reverse()) await fn();
  sink.close();
  echo.close();
  process.exit(0);
}

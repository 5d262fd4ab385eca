// Micro bench of the native sealed pair (docs/datapath.md "The sealed pair"): bulk bytes through
// two sealed joins back to back in one native stream engine, as the gateway's and the agent's ends
// of a data connection would be,
//   load client -> pair A (plain | sealed) -> TCP on loopback -> pair B (sealed | plain) -> sink
// beside the same chain joined with plain `pipe` (splice), in this one process. The load client
// and the sink run in a child process, so this process's CPU time is the relay's alone; the
// figure is MB moved per CPU-second of the relay, and the ratio sealed / plain.
//
// With LOAD=conn, the child opens short connections instead (CONC at a time, each 64 bytes to the
// sink and a FIN each way) and the figure is connections per CPU-second of the relay.
//
// WITH_NGINX=1 adds nginx (stream module, one worker, the settings of bench/relay/nginx-stream-conf.sh)
// as a single-hop relay to the same sink, measured the same way (its worker's CPU time): the
// chain's two joins stand for the gateway and the agent on one core, as subject-expose.sh does.
//
// Usage: npx tsc -p . && PORT_BASE=26400 DUR=3 ROUNDS=2 [LOAD=bulk|conn CONC=16 WITH_NGINX=1 MODES=plain,sealed,nginx] node bench/relay/sealed-pair.mjs
// (ports PORT_BASE .. PORT_BASE+3; the rounds alternate plain, sealed and nginx).
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const PORT_BASE = Number(process.env.PORT_BASE ?? 26400);
const DUR = Number(process.env.DUR ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const LOAD = process.env.LOAD ?? 'bulk';
const CONC = Number(process.env.CONC ?? 16);
const [relayPort, linkPort, sinkPort, nginxPort] = [PORT_BASE, PORT_BASE + 1, PORT_BASE + 2, PORT_BASE + 3];
// The port the load child connects to: the relay's, or nginx's for its rows.
const targetPort = Number(process.env.TARGET_PORT ?? relayPort);
const host = '127.0.0.1';

if (process.argv[2] === 'load') await (LOAD === 'conn' ? loadConns() : load());
else await relay();

/** The child, LOAD=conn: CONC loops of short connections for DUR seconds; each one 64 bytes, FINs both ways. */
async function loadConns() {
  let conns = 0;
  const sink = net.createServer({ allowHalfOpen: true }, (s) => {
    s.resume();
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  sink.listen(sinkPort, host);
  await new Promise((r) => sink.once('listening', r));
  const payload = Buffer.alloc(64, 1);
  const until = Date.now() + DUR * 1000;
  const loop = async () => {
    while (Date.now() < until) {
      await new Promise((resolve) => {
        const c = net.connect(targetPort, host, () => c.end(payload));
        c.on('error', resolve);
        c.resume();
        c.on('close', resolve);
      });
      conns++;
    }
  };
  await Promise.all(Array.from({ length: CONC }, loop));
  sink.close();
  process.stdout.write(JSON.stringify({ bytes: conns * 64, conns }) + '\n');
}

/** The child: a sink, and one client sending as fast as the chain takes for DUR seconds. */
async function load() {
  let got = 0;
  const done = new Promise((resolve) => {
    const sink = net.createServer((s) => {
      s.on('data', (c) => void (got += c.length));
      s.on('end', () => {
        s.end();
        sink.close();
        resolve();
      });
    });
    sink.listen(sinkPort, host);
  });
  await new Promise((r) => setTimeout(r, 50));
  const chunk = Buffer.alloc(256 << 10, 7);
  const c = net.connect(targetPort, host);
  c.on('connect', () => {
    const until = Date.now() + DUR * 1000;
    const pump = () => {
      while (Date.now() < until) if (!c.write(chunk)) return void c.once('drain', pump);
      c.end();
    };
    pump();
  });
  await done;
  c.destroy();
  process.stdout.write(JSON.stringify({ bytes: got }) + '\n');
}

async function relay() {
  const { loadNativeBinding } = await import('../../dist/src/datapath/native/binding.js');
  const { streamBindingOf } = await import('../../dist/src/datapath/native/stream-binding.js');
  const { NativeStreamDatapath } = await import('../../dist/src/datapath/native/native-stream-datapath.js');
  const loaded = loadNativeBinding();
  const binding = loaded.ok ? streamBindingOf(loaded.binding) : loaded.reason;
  if (typeof binding === 'string') throw new Error(`native stream engine unavailable: ${binding}`);
  const dp = new NativeStreamDatapath(binding);
  const key = (n, s) => Buffer.from(Array.from({ length: n }, (_, i) => (s + i * 7) & 255));
  const keys = { sealKey: key(16, 1), sealIv: key(12, 90), sealSeq: 1, openKey: key(16, 33), openIv: key(12, 150), openSeq: 0 };
  const mirror = { sealKey: keys.openKey, sealIv: keys.openIv, sealSeq: 0, openKey: keys.sealKey, openIv: keys.sealIv, openSeq: 1 };
  let mode = 'plain';
  const linked = new Map();
  const link = await dp.listen(host, linkPort, (c) => {
    const waiting = linked.get(c.remote.port);
    if (waiting) waiting(c);
    else linked.set(c.remote.port, c);
  });
  const dial = (port) => new Promise((resolve, reject) => dp.dial({ address: host, port, family: 4 }, 2000, (err, c) => (err ? reject(err) : resolve(c))));
  const front = await dp.listen(host, relayPort, async (client) => {
    const linkA = await dial(linkPort);
    const early = linked.get(linkA.local.port);
    const linkB = early ?? (await new Promise((r) => linked.set(linkA.local.port, r)));
    linked.delete(linkA.local.port);
    const sink = await dial(sinkPort);
    const ok =
      mode === 'sealed'
        ? dp.pipeSealed(client, linkA, keys, 0, () => {}) && dp.pipeSealed(sink, linkB, mirror, 0, () => {})
        : dp.pipe(client, linkA, 0, () => {}) && dp.pipe(linkB, sink, 0, () => {});
    if (!ok) throw new Error(`${mode}: not joined in the native datapath`);
  });

  const nginx = process.env.WITH_NGINX === '1' ? await startNginx() : undefined;
  const results = { plain: [], sealed: [], nginx: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const m of (process.env.MODES ?? 'plain,sealed,nginx').split(',').filter((m) => m !== 'nginx' || nginx)) {
      mode = m;
      const cpuOf = m === 'nginx' ? () => nginx.cpuS() : () => process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6;
      const cpu0 = cpuOf();
      const t0 = process.hrtime.bigint();
      const env = { ...process.env, TARGET_PORT: String(m === 'nginx' ? nginxPort : relayPort) };
      const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'load'], { stdio: ['ignore', 'pipe', 'inherit'], env });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      await new Promise((r) => child.on('exit', r));
      const cpuS = cpuOf() - cpu0;
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const { bytes, conns } = JSON.parse(out);
      const r =
        LOAD === 'conn'
          ? { mode: m, conns, relayCpuS: +cpuS.toFixed(2), connsPerCpuS: Math.round(conns / cpuS), connsPerS: Math.round(conns / wall) }
          : { mode: m, MB: +(bytes / 1e6).toFixed(1), relayCpuS: +cpuS.toFixed(2), MBperCpuS: +(bytes / 1e6 / cpuS).toFixed(0), wallMBps: +(bytes / 1e6 / wall).toFixed(0) };
      results[m].push(LOAD === 'conn' ? r.connsPerCpuS : r.MBperCpuS);
      console.log(JSON.stringify(r));
    }
  }
  const best = (a) => Math.max(...a);
  const unit = LOAD === 'conn' ? 'connections' : 'MB';
  console.log(`sealed/plain ${unit} per relay CPU-second (best of ${ROUNDS}): ${best(results.sealed)} / ${best(results.plain)} = ${(best(results.sealed) / best(results.plain)).toFixed(2)}`);
  if (nginx) {
    console.log(`sealed/nginx ${unit} per relay CPU-second (best of ${ROUNDS}): ${best(results.sealed)} / ${best(results.nginx)} = ${(best(results.sealed) / best(results.nginx)).toFixed(2)}`);
    nginx.stop();
  }
  await front.close();
  await link.close();
  dp.destroy();
}

/** nginx relaying nginxPort to the sink, one worker; its worker's CPU seconds from /proc. */
async function startNginx() {
  const { mkdtempSync, writeFileSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { execFileSync } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'sealed-pair-nginx-'));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
daemon off;
events { worker_connections 65536; }
stream { server { listen ${host}:${nginxPort}; proxy_pass ${host}:${sinkPort}; proxy_timeout 120s; } }
`,
  );
  const master = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'inherit' });
  let worker;
  for (let i = 0; i < 100 && !worker; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      worker = Number(execFileSync('pgrep', ['-P', String(master.pid)], { encoding: 'utf8' }).trim().split('\n')[0]);
    } catch {}
  }
  if (!worker) throw new Error('nginx did not start its worker');
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  return {
    cpuS() {
      const f = readFileSync(`/proc/${worker}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / ticks; // utime and stime (fields 14 and 15)
    },
    stop() {
      master.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

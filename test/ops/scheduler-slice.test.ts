import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Writable } from 'node:stream';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { addonSliceSyscalls, SchedulerSlice, startNodeSlice, type SliceSyscalls } from '../../src/ops/scheduler-slice.js';
import { startNode } from '../../src/root/start-node.js';
import { systemClock } from '../../src/core/clock.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { DEFAULT_SLICE_US } from '../../src/config/scheduler-schema.js';
import { parseUdpexposerArgs, runUdpexposerCommand } from '../../src/cli/udpexposer.js';
import { runSluice } from '../helpers/cli.js';
import { config } from '../helpers/node.js';

const loaded = loadNativeBinding();
const syscalls = addonSliceSyscalls(loaded.ok ? loaded.binding : loaded.reason);
/** Whether this kernel keeps a custom slice (EEVDF, Linux 6.12+): tried on this thread, then given back. */
function kernelKeepsSlice(s: SliceSyscalls): boolean {
  const kept = s.set(process.pid, 100) === 0 && s.get(process.pid) === 100_000;
  s.set(process.pid, 0);
  return kept;
}
const skip =
  typeof syscalls === 'string'
    ? `the native addon's slice calls are missing: ${syscalls}`
    : !kernelKeepsSlice(syscalls)
      ? 'this kernel does not keep a custom scheduler slice (EEVDF, Linux 6.12 or later)'
      : false;
if (skip && process.env.CI === 'true') throw new Error(skip);
if (skip) console.warn(`SKIPPING scheduler slice tests: ${skip}`);
const sys = syscalls as SliceSyscalls;

const tids = (pid: number | 'self') => readdirSync(`/proc/${pid}/task`).map(Number);
/** What sched_getattr says of every thread of `pid`. */
const slicesOf = (pid: number | 'self') => tids(pid).map((tid) => sys.get(tid)).filter((ns) => ns !== -constants.errno.ESRCH);

function recorder() {
  const warns: Record<string, unknown>[] = [];
  const infos: Record<string, unknown>[] = [];
  return { warns, infos, warn: (f: Record<string, unknown>) => void warns.push(f), info: (f: Record<string, unknown>) => void infos.push(f) };
}

/** Gives this test process's threads the system's slice back. */
function restore(): void {
  for (const tid of tids('self')) sys.set(tid, 0);
}

test('scheduler slice: a sluice process runs every thread with scheduler.sliceUs, read back with sched_getattr', { skip, timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-slice-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'sluice.yaml');
  await writeFile(
    file,
    ['routes:', '  echo: { listen: "udp://127.0.0.1:0", upstream: "127.0.0.1:9" }', 'scheduler: { sliceUs: 237 }', 'datapath: native', 'log: { level: info }', 'accessLog: { output: "off" }', ''].join('\n'),
  );
  const run = runSluice(t, ['run', file]);
  // Up once the route is: the node's last check ran before it reports its listeners.
  while (!run.err().includes('"route up"')) {
    const [chunk] = await Promise.race([once(run.child.stderr, 'data'), run.exited.then((code) => assert.fail(`sluice exited ${code}: ${run.err()}`))]);
    void chunk;
  }
  const pid = run.child.pid!;
  // Threads started after the node came up get it at the next periodic check (every 5 s).
  const deadline = Date.now() + 12_000;
  let slices = slicesOf(pid);
  while (slices.some((ns) => ns !== 237_000) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    slices = slicesOf(pid);
  }
  assert.ok(slices.length >= 5, `main, V8's and libuv's threads at least: ${slices.length}`);
  assert.deepEqual(slices, slices.map(() => 237_000), 'every thread runs with a 237 µs slice');
});

test('scheduler slice: a new thread inherits it; one that lacks it gets it at the next check', { skip }, async (t) => {
  t.after(restore);
  const clock = new ManualClock();
  const log = recorder();
  const slice = SchedulerSlice.start(311, { clock, syscalls: sys, ...log, recheckMs: 1000 });
  t.after(() => slice.close());
  assert.equal(slice.state, 'applied');
  assert.ok(slicesOf('self').every((ns) => ns === 311_000), 'every thread at start');
  assert.deepEqual(log.infos, [{ sliceUs: 311, threads: slice.threads }]);
  const before = new Set(tids('self'));
  const worker = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.postMessage("up"); setInterval(() => {}, 1000);', { eval: true });
  t.after(() => worker.terminate());
  await once(worker, 'message');
  const started = tids('self').filter((tid) => !before.has(tid));
  assert.ok(started.length >= 1, 'the worker is a new thread');
  assert.deepEqual(started.map((tid) => sys.get(tid)), started.map(() => 311_000), 'a thread inherits its creator\'s slice');
  // A thread that lacks it (made by a thread without it, or reset by someone else): here the worker's, given the system's back.
  for (const tid of started) assert.equal(sys.set(tid, 0), 0);
  assert.ok(started.every((tid) => sys.get(tid) !== 311_000));
  clock.advance(1000);
  assert.deepEqual(started.map((tid) => sys.get(tid)), started.map(() => 311_000), "the worker's threads have it after the check");
  assert.equal(log.warns.length, 0);
  assert.equal(log.infos.length, 1, 'said once');
});

test('scheduler slice: a refused sched_setattr warns once with the reason and the process carries on', { skip }, (t) => {
  t.after(restore);
  const clock = new ManualClock();
  const log = recorder();
  // The kernel's answer to a slice it does not take (before Linux 6.12): EINVAL on set; get is the real one.
  const einval: SliceSyscalls = { get: (tid) => sys.get(tid), set: () => constants.errno.EINVAL };
  const before = slicesOf('self');
  const slice = SchedulerSlice.start(150, { clock, syscalls: einval, ...log, recheckMs: 1000 });
  assert.equal(slice.state, 'unsupported');
  assert.equal(log.warns.length, 1);
  assert.match(String(log.warns[0]!.reason), /EINVAL.*Linux 6\.12/);
  clock.advance(10_000);
  assert.equal(log.warns.length, 1, 'once: no check runs after a refusal');
  assert.deepEqual(slicesOf('self'), before, 'threads keep the slice they had');
});

test('scheduler slice: a kernel that takes sched_runtime and ignores it is named as such', { skip }, () => {
  const log = recorder();
  const ignored: SliceSyscalls = { get: (tid) => sys.get(tid), set: () => 0 };
  const slice = SchedulerSlice.start(150, { clock: new ManualClock(), syscalls: ignored, ...log });
  assert.equal(slice.state, 'unsupported');
  assert.match(String(log.warns[0]!.reason), /does not keep a custom slice/);
  const noProc = recorder();
  const unlisted = SchedulerSlice.start(150, { clock: new ManualClock(), syscalls: sys, ...noProc, threads: () => { throw new Error("ENOENT: no such file or directory, scandir '/proc/self/task'"); } });
  assert.equal(unlisted.state, 'unsupported');
  assert.match(String(noProc.warns[0]!.reason), /^cannot list this process's threads: ENOENT/);
});

test('scheduler slice: 0 does nothing; without the addon (datapath: js) one warning', { skip }, () => {
  const log = recorder();
  const off = SchedulerSlice.start(0, { clock: new ManualClock(), syscalls: { get: () => assert.fail('no call'), set: () => assert.fail('no call') }, ...log });
  assert.equal(off.state, 'off');
  const js = startNodeSlice({ sliceUs: 200, datapath: 'js' }, { clock: new ManualClock(), ...log });
  assert.equal(js.state, 'unsupported');
  assert.equal(log.warns.length, 1);
  assert.match(String(log.warns[0]!.reason), /datapath: js/);
  assert.deepEqual(addonSliceSyscalls({ schedSlice: undefined, schedSliceOf: undefined }), 'the native addon was built without it (rebuild it: node native/build.mjs)');
  // Not asked for (the default, 0): nothing is set and nothing is said.
  const quiet = recorder();
  const byDefault = startNodeSlice({ sliceUs: undefined, datapath: 'js' }, { clock: new ManualClock(), ...quiet });
  assert.equal(byDefault.sliceUs, DEFAULT_SLICE_US);
  assert.equal(DEFAULT_SLICE_US, 0);
  assert.equal(byDefault.state, 'off');
  assert.equal(quiet.warns.length + quiet.infos.length, 0);
});

test('scheduler slice: a node whose sched_setattr is refused starts, serves and warns once', { skip }, async (t) => {
  const lines: Record<string, unknown>[] = [];
  const logDestination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const upstream = dgram.createSocket('udp4');
  upstream.on('message', (m, r) => upstream.send(m, r.port, r.address));
  upstream.bind(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.after(() => upstream.close());
  const eperm: SliceSyscalls = { get: (tid) => sys.get(tid), set: () => constants.errno.EPERM };
  const yaml = `routes:\n  echo: { listen: "udp://127.0.0.1:0", upstream: "127.0.0.1:${upstream.address().port}" }\nscheduler: { sliceUs: 400 }\naccessLog: { output: "off" }\nlifecycle: { drainTimeout: 100ms }\n`;
  const node = await startNode(config(yaml), { clock: systemClock, logDestination, schedulerSlice: eperm });
  t.after(() => node.stop());
  const client = dgram.createSocket('udp4');
  t.after(() => client.close());
  client.send('ping', node.routes.route('echo')!.local.port, '127.0.0.1');
  const [reply] = await once(client, 'message');
  assert.equal(String(reply), 'ping', 'the route serves');
  const warned = lines.filter((l) => l.sliceUs === 400 && typeof l.reason === 'string');
  assert.equal(warned.length, 1);
  assert.match(String(warned[0]!.reason), /^EPERM/);
  assert.ok(slicesOf('self').every((ns) => ns !== 400_000), 'no thread has it');
});

test('scheduler slice: udpexposer takes --scheduler-slice-us, refuses values outside 0 or 100-100000, and warns once when refused', { skip }, async (t) => {
  t.after(restore);
  const parsed = parseUdpexposerArgs(['127.0.0.1:1', '-s', '--scheduler-slice-us', '173']);
  assert.ok(parsed !== 'help' && parsed.schedulerSliceUs === 173);
  assert.throws(() => parseUdpexposerArgs(['127.0.0.1:1', '-s', '--scheduler-slice-us', '50']), /--scheduler-slice-us: 50 is out of range \(0, or 100-100000\)/);
  assert.throws(() => parseUdpexposerArgs(['127.0.0.1:1', '-s', '--scheduler-slice-us', '100001']), /--scheduler-slice-us: 100001 is out of range/);
  const sink = () => ({ text: '', write(s: string) { this.text += s; } });
  // Applied: this process's threads run with it while the server is up.
  let seen: number[] = [];
  const ac = new AbortController();
  const code = await runUdpexposerCommand(['127.0.0.1:0', '-s', '--datapath', 'native', '--scheduler-slice-us', '173'], {
    stdout: sink(), stderr: sink(), signal: ac.signal, clock: systemClock,
    onReady: () => {
      seen = slicesOf('self');
      ac.abort();
    },
  });
  assert.equal(code, 0);
  assert.ok(seen.length >= 5 && seen.every((ns) => ns === 173_000), `every thread: ${seen.join(' ')}`);
  restore();
  // Refused: one warning, and the server runs.
  const err = sink();
  const ac2 = new AbortController();
  let ready = false;
  const code2 = await runUdpexposerCommand(['127.0.0.1:0', '-s', '--scheduler-slice-us', '173'], {
    stdout: sink(), stderr: err, signal: ac2.signal, clock: systemClock, schedulerSlice: { get: (tid) => sys.get(tid), set: () => constants.errno.EPERM },
    onReady: () => {
      ready = true;
      ac2.abort();
    },
  });
  assert.equal(code2, 0);
  assert.ok(ready, 'the server came up');
  assert.equal(err.text.match(/warning: --scheduler-slice-us not applied; threads keep the system slice: EPERM/g)?.length, 1, err.text);
});

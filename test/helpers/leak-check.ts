// The leak check of every test file (scripts/test.mjs loads it with --import into each file's
// process): once the file's tests and hooks are done, nothing the file opened may still be open:
// no socket, server, UDP socket, child process or timer, referenced or not. A leak fails the file
// (exit code 1) with one line naming each resource.
//
// How it sees them. Referenced handles are in process.getActiveResourcesInfo(); while one is open
// the process never gets to 'beforeExit', so a watchdog started when the file's root after-hooks
// begin reports them if the process is still up LEAK_CHECK_HANG_MS later (a leak that would hang
// the file becomes a failure with a name). Unreferenced ones are invisible there, so the check records
// every timer made through the global setTimeout/setInterval (the system clock's are unref'd) and
// every socket, server and child process on which unref() is called, and looks at them on
// 'beforeExit'. Resources made before the file's first import are not its own and are ignored.
import { after } from 'node:test';
import net from 'node:net';
import dgram from 'node:dgram';
import { ChildProcess } from 'node:child_process';
import { relative } from 'node:path';

interface TimerInternals {
  _destroyed: boolean;
  _repeat: number | null;
  _idleTimeout: number;
  _onTimeout: (...args: unknown[]) => void;
}

/** How long a file may stay up after its last root hook before its referenced handles count as leaked. */
const HANG_MS = Number(process.env.LEAK_CHECK_HANG_MS ?? 10_000);
/** How long what is still open at exit may take to finish closing. */
const SETTLE_MS = 1000;

const real = { setTimeout: globalThis.setTimeout, setInterval: globalThis.setInterval };
const timers = new Set<TimerInternals>();
const PRUNE_AT = 20_000;
let pruneAt = PRUNE_AT;
const unrefd = new Set<object>();

function trackTimers(): void {
  const wrap = <F extends typeof setTimeout | typeof setInterval>(make: F): F => {
    const wrapped = function (this: unknown, ...args: unknown[]) {
      const t = (make as unknown as (...a: unknown[]) => TimerInternals).apply(this, args);
      if (timers.size >= pruneAt) {
        for (const old of timers) if (old._destroyed) timers.delete(old);
        pruneAt = Math.max(PRUNE_AT, 2 * timers.size); // amortised: never a scan per timer
      }
      timers.add(t);
      return t;
    };
    // Keeps util.promisify.custom and the rest of what the real function carries.
    Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(make));
    return wrapped as unknown as F;
  };
  globalThis.setTimeout = wrap(real.setTimeout);
  globalThis.setInterval = wrap(real.setInterval);
}

function trackUnref(): void {
  for (const proto of [net.Socket.prototype, net.Server.prototype, dgram.Socket.prototype, ChildProcess.prototype] as { unref(): unknown }[]) {
    const unref = proto.unref;
    proto.unref = function (this: object) {
      unrefd.add(this);
      return unref.call(this);
    };
  }
}

const countTypes = (types: string[]) => types.reduce((m, t) => m.set(t, (m.get(t) ?? 0) + 1), new Map<string, number>());

function stillOpen(o: object): boolean {
  if (o instanceof net.Socket) return !o.destroyed;
  if (o instanceof net.Server) return o.listening;
  if (o instanceof dgram.Socket) {
    try {
      o.address();
      return true;
    } catch {
      return false;
    }
  }
  if (o instanceof ChildProcess) return o.exitCode === null && o.signalCode === null;
  return false;
}

function describeHandle(o: object): string {
  if (o instanceof net.Socket) {
    if ((o as unknown as { _handle?: object })._handle?.constructor.name === 'Pipe') return 'PipeWrap (pipe or unix socket)';
    const ends = o.remotePort !== undefined ? ` ${o.localAddress}:${o.localPort} -> ${o.remoteAddress}:${o.remotePort}` : '';
    return `TCPSocketWrap (socket${ends})`;
  }
  if (o instanceof net.Server) {
    const a = o.address();
    return `TCPServerWrap (server listening on ${typeof a === 'string' ? a : a ? `${a.address}:${a.port}` : '?'})`;
  }
  if (o instanceof dgram.Socket) {
    const a = o.address();
    return `UDPWrap (UDP socket bound to ${a.address}:${a.port})`;
  }
  if (o instanceof ChildProcess) return `ProcessWrap (child process ${o.pid} ${o.spawnfile})`;
  return o.constructor.name;
}

function describeTimer(t: TimerInternals): string {
  const what = t._repeat ? `setInterval every ${t._repeat} ms` : `setTimeout of ${t._idleTimeout} ms`;
  const fn = String(t._onTimeout).replace(/\s+/g, ' ').slice(0, 100);
  return `Timeout (${what}: ${fn})`;
}

const activeHandles = () => (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();

interface Baseline {
  readonly types: Map<string, number>;
  readonly handles: Set<object>;
}

/** What the file left open beyond `baseline`, one entry per resource, named by its resource type. */
function leaks(baseline: Baseline): string[] {
  const out: string[] = [];
  for (const t of timers) if (!t._destroyed) out.push(describeTimer(t));
  const handles = new Set([...unrefd].filter(stillOpen));
  for (const h of activeHandles()) if (!baseline.handles.has(h) && stillOpen(h)) handles.add(h);
  for (const h of handles) out.push(describeHandle(h));
  // Whatever else is still active (requests, watchers, handles of other kinds), by type.
  const named = countTypes(out.map((l) => l.split(' ')[0]!));
  for (const [type, n] of countTypes(process.getActiveResourcesInfo())) {
    const extra = n - (baseline.types.get(type) ?? 0) - (named.get(type) ?? 0);
    if (extra > 0) out.push(`${extra} ${type}`);
  }
  return out;
}

function report(file: string, found: string[]): void {
  process.stderr.write(`leak check: ${file} left ${found.length} resource(s) open after its tests:\n${found.map((l) => `  ${l}\n`).join('')}`);
  process.exitCode = 1;
}

/** Lets a leaking file end: the leaked handles stop holding the process and leaked children are killed. */
function release(): void {
  for (const t of timers) if (!t._destroyed) clearTimeout(t as unknown as NodeJS.Timeout);
  for (const h of [...activeHandles(), ...unrefd] as { unref?(): void }[]) {
    if (h instanceof ChildProcess && stillOpen(h)) h.kill('SIGKILL');
    if (h === process.stdout || h === process.stderr || h === process.stdin) continue;
    h.unref?.();
  }
}

function install(): void {
  const file = relative(process.cwd(), process.argv[1] ?? '?');
  trackTimers();
  trackUnref();
  const baseline: Baseline = { types: countTypes(process.getActiveResourcesInfo()), handles: new Set(activeHandles()) };
  let reported = false;
  // Registered before the file's own root hooks, so it runs first: it only starts the watchdog.
  after(() => {
    const watchdog = real.setTimeout(() => {
      const found = leaks(baseline);
      if (found.length === 0 || reported) return;
      reported = true;
      report(file, found);
      release();
    }, HANG_MS);
    watchdog.unref();
  });
  // Closing is asynchronous (a peer's FIN, a child's exit): what is still open when the process
  // would exit gets SETTLE_MS more, in short waits that each bring 'beforeExit' back.
  let settleUntil: number | undefined;
  process.on('beforeExit', () => {
    if (reported) return;
    const found = leaks(baseline);
    if (found.length === 0) return;
    settleUntil ??= Date.now() + SETTLE_MS;
    if (Date.now() < settleUntil) return void real.setTimeout(() => {}, 20);
    reported = true;
    report(file, found);
    release();
  });
}

// In the runner's own process (no test context) there is nothing to check.
if (process.env.NODE_TEST_CONTEXT) install();

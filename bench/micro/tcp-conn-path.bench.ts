// The plain TCP route's JavaScript per connection on the native stream datapath, without the
// kernel: node dist/bench/micro/tcp-conn-path.bench.js [DIST_SRC ...]
// A scripted engine (the binding's functions in JavaScript) hands the route batches of accepted
// connections, then the answers of their dials (joined at connect), then their ends, as the engine
// does under the bench's `cps` load (about 6 connections a wake-up); the route, the session shell,
// the dialer and NativeStreamDatapath run as they do in the relay. Prints ns and bytes allocated per
// connection, best of several passes. With builds' dist/src as arguments, each build's modules run
// the same script in turn in one process (A/B of the connection path: docs/datapath.md).
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BATCH = 6;
/** Connections per timed pass, and passes (TCP_PATH_PASSES; a short run under valgrind counts instructions). */
const PASS = 200_000;
const PASSES = Number(process.env.TCP_PATH_PASSES ?? 10);
const EV_RECORD = 16;

interface Mods {
  NativeStreamDatapath: new (b: unknown) => unknown;
  TcpRoute: { start(route: unknown, deps: unknown): Promise<{ close(reason: string): Promise<void>; active: number }> };
  EventStream: new () => { subscribe(sink: (e: unknown) => void, interest?: (t: string) => boolean): void };
  notPerSession: (t: string) => boolean;
  DirectStreamDialer: new (r?: unknown, o?: unknown) => unknown;
  systemClock: unknown;
  parseConfig(text: string): { ok: boolean; config?: { routes: unknown[] } };
}

async function load(src: string): Promise<Mods> {
  const m = (p: string) => import(pathToFileURL(path.join(src, p)).href);
  const [dp, route, events, dialer, clock, config] = await Promise.all([
    m('datapath/native/native-stream-datapath.js'),
    m('listen/tcp-route.js'),
    m('observe/events.js'),
    m('upstream/direct/tcp-dialer.js'),
    m('core/clock.js'),
    m('config/load.js'),
  ]);
  return { ...dp, ...route, ...events, ...dialer, ...clock, ...config } as Mods;
}

/** The binding as the route uses it; records are written into the shared array by `pump`. */
function scriptedEngine() {
  let ev: Float64Array = new Float64Array(0);
  let deliver: (n: number) => void = () => {};
  const dialed: number[] = [];
  const fail = () => {
    throw new Error('not scripted');
  };
  const binding = {
    streamOpen(events: Float64Array, on: (n: number) => void) {
      ev = events;
      deliver = on;
      return {};
    },
    streamListen: () => 0,
    streamLocal: () => [4, '127.0.0.1', 9000],
    streamDial: fail,
    streamDialJoin(_e: unknown, _h: string, _p: number, _t: number, client: number) {
      dialed.push(client + 1);
      return client + 1;
    },
    streamClose: () => undefined,
    streamWatch: fail,
    streamRead: fail,
    streamWrite: fail,
    streamPipe: fail,
    streamRelease: fail,
    streamCounters: fail,
    streamDestroy: () => {},
    streamPipeSealed: fail,
    streamSealedLimits: fail,
    streamResetOnClose: fail,
  };
  let port = 1024;
  /** One wake-up's accepts, the dials' answers, then the pairs' ends. Ids are reused as the engine does. */
  const pump = () => {
    for (let i = 0; i < BATCH; i++) {
      const o = i * EV_RECORD;
      ev.fill(0, o, o + EV_RECORD);
      ev[o] = 1;
      ev[o + 1] = 0;
      ev[o + 2] = 1 + 2 * i;
      ev[o + 3] = 4;
      ev[o + 4] = port = port === 65535 ? 1024 : port + 1;
      ev[o + 5] = 0x7f000001;
      ev[o + 9] = 4;
      ev[o + 10] = 9000;
      ev[o + 11] = 0x7f000001;
    }
    deliver(BATCH);
    const n = dialed.length;
    for (let i = 0; i < n; i++) {
      const o = i * EV_RECORD;
      ev.fill(0, o, o + EV_RECORD);
      ev[o] = 3;
      ev[o + 1] = dialed[i]!;
      ev[o + 3] = 1;
    }
    dialed.length = 0;
    deliver(n);
    for (let i = 0; i < BATCH; i++) {
      const o = i * EV_RECORD;
      ev.fill(0, o, o + EV_RECORD);
      ev[o] = 4;
      ev[o + 1] = 1 + 2 * i;
      ev[o + 2] = 1;
      ev[o + 4] = 32;
      ev[o + 5] = 32;
    }
    deliver(BATCH);
  };
  return { binding, pump };
}

async function side(src: string) {
  const m = await load(src);
  const parsed = m.parseConfig('routes:\n  echo-tcp:\n    listen: tcp://127.0.0.1:9000\n    upstream: 127.0.0.1:9001\n    tcp: { idleTimeout: 120s, maxConnections: 0, maxConnectionsPerSource: 0 }\n');
  if (!parsed.ok) throw new Error('bench config did not parse');
  const events = new m.EventStream();
  // As a relay with no access log, flow records or admin listener: the process log's sinks only.
  events.subscribe(() => {}, m.notPerSession);
  events.subscribe(() => {}, m.notPerSession);
  const { binding, pump } = scriptedEngine();
  let flow = 0;
  const route = await m.TcpRoute.start(parsed.config!.routes[0], {
    clock: m.systemClock,
    events,
    nextFlowId: () => ++flow,
    dialer: new m.DirectStreamDialer(undefined, { clock: m.systemClock }),
    streamDatapath: new m.NativeStreamDatapath(binding),
  });
  return { src, route, pump, ns: Infinity, bytes: 0 };
}

/**
 * Each build given (default: this one) in the same process, passes alternating, so the other
 * tenants of a shared machine fall on all of them alike; the fastest pass of each is reported.
 */
export async function main(srcs: string[]): Promise<void> {
  const sides = await Promise.all((srcs.length > 0 ? srcs : [path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src')]).map(side));
  for (let pass = 0; pass < PASSES; pass++) {
    for (const s of sides) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < PASS / BATCH; i++) s.pump();
      if (pass >= 2) s.ns = Math.min(s.ns, Number(process.hrtime.bigint() - t0) / PASS);
    }
  }
  // Bytes allocated: the heap's growth over a short pass; a pass a young collection fell in shows
  // less, so the largest of many passes is the one without.
  for (let pass = 0; pass < (PASSES >= 10 ? 40 : 0); pass++) {
    for (const s of sides) {
      const heap0 = process.memoryUsage().heapUsed;
      for (let i = 0; i < 200; i++) s.pump();
      s.bytes = Math.max(s.bytes, (process.memoryUsage().heapUsed - heap0) / (200 * BATCH));
    }
  }
  for (const s of sides) {
    if (s.route.active !== 0) throw new Error(`${s.route.active} connections still live: the script lost some`);
    await s.route.close('shutdown');
    console.log(`bench=tcp-conn-path src=${s.src} ns_per_conn=${s.ns.toFixed(0)} bytes_per_conn=${PASSES >= 10 ? s.bytes.toFixed(0) : 'n/a'}`);
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));

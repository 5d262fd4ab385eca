import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { isSingleExecutable, packagedAsset } from '../../core/packaged.js';
import type { YoungGenerationHeap } from '../../core/young-generation.js';

/** An opaque handle to one native engine (native/src/engine.h). */
export type EngineHandle = { readonly __engine: unique symbol };

/** Record sizes of the shared memory, as the addon was built (native/src/engine.h). */
export interface NativeLayout {
  readonly slotBytes: number;
  readonly rxRecord: number;
  readonly txRecord: number;
  readonly errRecord: number;
  /** The kernel accepts UDP_SEGMENT. */
  readonly gso: boolean;
}

/**
 * The addon's functions (native/src/addon.cc). All synchronous, all on the JavaScript thread;
 * socket calls throw Node-style system errors (`code`, `errno`, `syscall`).
 */
export interface NativeBinding {
  layout(): NativeLayout;
  open(rx: ArrayBuffer, rxm: Int32Array, tx: ArrayBuffer, txm: Int32Array, errm: Int32Array, onBatch: (n: number) => void, gso: boolean, threaded: boolean): EngineHandle;
  listen(engine: EngineHandle, host: string, port: number, rcvbufBytes: number, sndbufBytes: number): number;
  connect(engine: EngineHandle, host: string, port: number): number;
  localAddress(engine: EngineHandle, id: number): [family: 4 | 6, address: string, port: number];
  close(engine: EngineHandle, id: number): void;
  /** Sends `count` staged records; returns how many error records it wrote. */
  flush(engine: EngineHandle, count: number): number;
  destroy(engine: EngineHandle): void;
  // Optional: an addon built before them lacks them (the datapath then runs without a delay and
  // with default channel buffers rather than failing).
  /** Sets the bounded receive delay (native/src/hold.cc), clamped to 0..10000 µs; returns it. */
  receiveDelay?(engine: EngineHandle, microseconds: number): number;
  /** How many times the engine slept to let a batch fill. */
  receiveDelays?(engine: EngineHandle): number;
  /** Sets SO_RCVBUF / SO_SNDBUF of socket `id` (0 leaves one as it is); false when it cannot. */
  socketBuffers?(engine: EngineHandle, id: number, rcvbufBytes: number, sndbufBytes: number): boolean;
  /** Sets UDP_GRO on socket `id`: runs arrive as one buffer, cut up in the batch (native/src/gro.cc); false when it cannot. */
  coalesce?(engine: EngineHandle, id: number): boolean;
  /** [received buffers that held more than one datagram, datagrams that waited for a free slot]. */
  coalesceStats?(engine: EngineHandle): [number, number];
  /** A socket bound beside listener `listenerId` and connected to one client (native/src/isolate.cc): its id. */
  isolate?(engine: EngineHandle, listenerId: number, host: string, port: number, rcvbufBytes: number): number;
  /** Datagrams the kernel dropped at socket `id` (SO_MEMINFO), or -1. */
  socketDrops?(engine: EngineHandle, id: number): number;
  /** park.cc: [parks, unparks, sockets parked now, readiness callbacks] (tests and benches read it). */
  parkState?(engine: EngineHandle): [number, number, number, number];
  /** park.cc: the kernel's drops at socket `id` while it was parked for its send budget (counted by the budget's reasons). */
  socketBudgetDrops?(engine: EngineHandle, id: number): number;
  /** The adaptive receive delay (native/src/hold.cc): engaged at or above `minRate` datagrams/s, each sleep about `batch` datagrams' time. */
  receiveDelayAdaptive?(engine: EngineHandle, minRate: number, batch: number): void;
  /** [sleeps, engaged (0/1), times engaged, times disengaged, datagrams/s over the last window]. */
  receiveDelayState?(engine: EngineHandle): [number, number, number, number, number];
  /**
   * Listener `id` names, in a record of its own, a source that filled its share of the harvest
   * read after read until they carried `datagrams` of it (native/src/heavy.cc; 0: off, -1: only
   * asks); returns the sources named so far, or -1.
   */
  watchSources?(engine: EngineHandle, id: number, datagrams: number): number;
  /**
   * The way tunnel keys added from now on reach ChaCha20-Poly1305 (native/src/aead.h): Intel's
   * ipsec-mb, OpenSSL's provider functions or EVP; `want` picks the best available at or below it
   * (tests). Returns [way, why ipsec-mb is not loaded or ''].
   */
  sealPath?(engine: EngineHandle, want?: 'ipsec-mb' | 'provider' | 'evp'): [string, string];
  /** Writes [committed bytes, used bytes] of V8's young generation into `out` (native/src/heap-memory.cc). */
  youngGeneration?(out: Float64Array): void;
  /** Asks V8 for a memory-reducing collection (moderate memory pressure). */
  reduceMemory?(): void;
  /** Gives thread `tid` a scheduler slice of `microseconds` (0: the system's) (native/src/sched-slice.cc); 0 or an errno. */
  schedSlice?(tid: number, microseconds: number): number;
  /** Thread `tid`'s scheduler slice in nanoseconds, or -errno. */
  schedSliceOf?(tid: number): number;
}

export type BindingLoad = { ok: true; binding: NativeBinding; layout: NativeLayout } | { ok: false; reason: string };

/** Where `npm install` builds the addon (native/build.mjs), from dist/src/datapath/native/. */
export const ADDON_PATH = fileURLToPath(new URL('../../../../native/build/Release/sluice_udp.node', import.meta.url));

/**
 * Loads the addon. Never throws: an unsupported platform, a missing build or a broken one is a
 * reason, for the caller to fall back on the js datapath (or refuse, when `native` was asked for).
 */
export function loadNativeBinding(path: string = ADDON_PATH, platform: string = process.platform): BindingLoad {
  if (platform !== 'linux') return { ok: false, reason: `it needs Linux, this is ${platform}` };
  if (isSingleExecutable && path === ADDON_PATH) return loadPackagedBinding();
  if (!existsSync(path)) return { ok: false, reason: `${path} is not built (npm install builds it; see native/build.log)` };
  try {
    const binding = createRequire(import.meta.url)(path) as NativeBinding;
    const layout = binding.layout();
    return { ok: true, binding, layout };
  } catch (err) {
    return { ok: false, reason: `${path} does not load: ${(err as Error).message}` };
  }
}

/** The asset a single executable carries the addon in (scripts/build-sea.mjs). */
const PACKAGED_ADDON = 'native/sluice_udp.node';

/**
 * A single executable carries the addon as an asset; the dynamic loader needs a file, so it is
 * written to a private temporary directory (mode 0700), loaded, and removed at once: the mapping
 * stays valid after the unlink, and nothing is left behind, whatever way the process ends.
 */
function loadPackagedBinding(): BindingLoad {
  const bytes = packagedAsset(PACKAGED_ADDON);
  if (!bytes) return { ok: false, reason: 'this single executable carries no native addon (built without one)' };
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), 'sluice-udp-'));
  } catch (err) {
    return { ok: false, reason: `cannot write the packaged addon to ${tmpdir()}: ${(err as Error).message} (set TMPDIR to a writable directory)` };
  }
  const file = join(dir, 'sluice_udp.node');
  try {
    writeFileSync(file, bytes, { mode: 0o500 });
    const module = { exports: {} as NativeBinding };
    process.dlopen(module, file);
    return { ok: true, binding: module.exports, layout: module.exports.layout() };
  } catch (err) {
    return { ok: false, reason: `the packaged addon does not load from ${file}: ${(err as Error).message}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The young generation's reading and reduction through the addon (core/young-generation.ts), or
 * undefined where the addon does not load or predates them (the watch is then not run).
 */
export function youngGenerationHeap(load: () => BindingLoad = loadNativeBinding): YoungGenerationHeap | undefined {
  const loaded = load();
  if (!loaded.ok) return undefined;
  const { youngGeneration, reduceMemory } = loaded.binding;
  if (youngGeneration === undefined || reduceMemory === undefined) return undefined;
  let last = performance.eventLoopUtilization();
  return {
    read: (out) => youngGeneration(out),
    reduce: () => reduceMemory(),
    busy: () => {
      const now = performance.eventLoopUtilization();
      const share = performance.eventLoopUtilization(now, last).utilization;
      last = now;
      return share;
    },
  };
}

import type { Clock, Timer } from './clock.js';

/**
 * Gives V8's young generation back once a burst is over (docs/benchmarks.md, "Idle exposed UDP
 * sessions: the young generation given back after a burst").
 *
 * V8 grows its young generation (new space: two semi-spaces, up to 2 x 16 MB) while many
 * long-lived objects survive its scavenges, as in a burst of thousands of new sessions, and
 * shrinks it only in a full collection that finds the allocation rate low. A relay that makes no
 * garbage once the burst is over runs no collection at all, and V8's own memory reducer judges
 * the rate from the samples of its last collections (the burst's), so the grown young generation
 * stays resident for 80-105 s: about 1.2 KB per idle session after a burst of 10,000.
 *
 * This watch reads the young generation's size every `intervalMs` without allocating; when it
 * holds `grownBytes` or more (start-up alone grows it to about 18 MB), and the process
 * allocated less than `quietBytesPerSecond` (what V8 itself calls a low rate) with its event loop
 * busy less than `quietBusy` of the time, for `quietReadings` readings in a row, it asks V8 once
 * for a memory-reducing collection (incremental: its steps run
 * on the event loop), which shrinks the young generation and compacts the old one. At most one
 * request per `minGapMs`; none while the process is busy, so the throughput of a loaded relay is
 * untouched.
 */
export interface YoungGenerationHeap {
  /** Writes [committed bytes, used bytes] of the young generation into `out`. */
  read(out: Float64Array): void;
  /** Asks for a memory-reducing collection. */
  reduce(): void;
  /**
   * The share of time the event loop was busy since the previous call (0..1). The native datapath
   * forwards without allocating in JavaScript, so a relay under load can look quiet to `read`
   * alone; its loop is busy, and the collection's pause would hold its batches.
   */
  busy(): number;
}

export interface YoungGenerationSettings {
  readonly intervalMs?: number;
  readonly quietReadings?: number;
  readonly quietBytesPerSecond?: number;
  readonly quietBusy?: number;
  readonly grownBytes?: number;
  readonly minGapMs?: number;
}

const DEFAULTS: Required<YoungGenerationSettings> = {
  intervalMs: 1000,
  quietReadings: 2,
  // V8's own "low allocation throughput" (heap.cc: 1,000 bytes per ms).
  quietBytesPerSecond: 1_000_000,
  // An idle relay with 10,000 sessions keeps its loop busy about 1 % of the time (its sweeps).
  quietBusy: 0.05,
  // V8 shrinks it to 1 MB and grows it by doubling (up to 2 x 16 MB): 8 MB is three doublings.
  grownBytes: 8 * 1024 * 1024,
  minGapMs: 10_000,
};

export class YoungGenerationWatch {
  readonly #s: Required<YoungGenerationSettings>;
  readonly #out = new Float64Array(2);
  #timer: Timer | null;
  #lastUsed = -1;
  #lastAt = 0;
  #quiet = 0;
  #lastReduce = -Infinity;
  /** Collections asked for so far. */
  reductions = 0;

  constructor(
    private readonly heap: YoungGenerationHeap,
    private readonly clock: Clock,
    settings: YoungGenerationSettings = {},
  ) {
    this.#s = { ...DEFAULTS, ...settings };
    this.#timer = clock.setInterval(() => this.check(), this.#s.intervalMs);
  }

  /** One reading (the timer's; public for tests that step the clock). */
  check(): void {
    const s = this.#s;
    this.heap.read(this.#out);
    const committed = this.#out[0]!;
    const used = this.#out[1]!;
    const now = this.clock.now();
    // A scavenge empties the young generation: then what was allocated since is unknown, not quiet.
    const allocated = used - this.#lastUsed;
    const seconds = (now - this.#lastAt) / 1000;
    const busy = this.heap.busy();
    const quiet = this.#lastUsed >= 0 && allocated >= 0 && seconds > 0 && allocated / seconds < s.quietBytesPerSecond && busy < s.quietBusy;
    this.#quiet = quiet ? this.#quiet + 1 : 0;
    this.#lastUsed = used;
    this.#lastAt = now;
    const grown = committed >= s.grownBytes;
    if (grown && this.#quiet >= s.quietReadings && now - this.#lastReduce >= s.minGapMs) {
      this.#lastReduce = now;
      this.#quiet = 0;
      this.reductions++;
      this.heap.reduce();
    }
  }

  close(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }
}

import { readdirSync } from 'node:fs';
import { constants } from 'node:os';
import type { Clock, Timer } from '../core/clock.js';
import { loadNativeBinding, type NativeBinding } from '../datapath/native/binding.js';
import { DEFAULT_SLICE_US } from '../config/scheduler-schema.js';

/**
 * The scheduler slice of every thread of this process (`scheduler.sliceUs`, docs/configuration.md):
 * EEVDF's custom slice (Linux 6.12+). With a shorter slice than the system's, a relay that keeps
 * a core busy under a flood is preempted sooner by the tasks woken beside it (the service it
 * forwards to, other clients' processes) and its own wake-ups run sooner: the tail of a second
 * client's round trips is run-queue delay (docs/expose.md, "A shorter scheduler slice").
 *
 * Threads come and go (libuv's pool starts on first use, the native engines' threads with their
 * sockets): `check()` gives the slice to every thread that lacks it, at start, once the node is
 * up, and every `recheckMs` after (a directory listing and one sched_getattr per thread: a few
 * microseconds every few seconds). Where it cannot be had (no addon, an addon without it, a
 * kernel without custom slices, a refusal), one warning with the reason, and the process carries
 * on with the system's slice.
 */

/** The two system calls, per thread (native/src/sched-slice.cc): the seam tests inject failures at. */
export interface SliceSyscalls {
  /** Gives thread `tid` a slice of `microseconds` (0: the system's); 0, or the errno of the refusal. */
  set(tid: number, microseconds: number): number;
  /** Thread `tid`'s slice in nanoseconds, or -errno. */
  get(tid: number): number;
}

export interface SchedulerSliceDeps {
  readonly clock: Clock;
  /** The system calls, or why there are none (no addon, `datapath: js`). */
  readonly syscalls: SliceSyscalls | string;
  readonly warn: (fields: Record<string, unknown>, message: string) => void;
  readonly info: (fields: Record<string, unknown>, message: string) => void;
  /** This process's thread ids; /proc/self/task by default. */
  readonly threads?: () => number[];
  readonly recheckMs?: number;
  /**
   * The slice was asked for (a config key, a flag): where it cannot be had, a warning. Not asked
   * for (the default): the same line at info level, since nothing the operator set is ignored.
   */
  readonly explicit?: boolean;
  /** What the operator calls the setting, in the warning: `scheduler.sliceUs` by default. */
  readonly setting?: string;
}

const RECHECK_MS = 5_000;

export type SliceState = 'off' | 'applied' | 'unsupported';

export class SchedulerSlice {
  readonly #wantNs: number;
  readonly #deps: SchedulerSliceDeps;
  #timer: Timer | null = null;
  #state: SliceState;
  #threads = 0;
  #announced = false;

  /** Starts giving `sliceUs` to every thread (0: leaves the system's slice, does nothing). */
  static start(sliceUs: number, deps: SchedulerSliceDeps): SchedulerSlice {
    const s = new SchedulerSlice(sliceUs, deps);
    if (s.#state === 'applied') {
      s.check();
      if (s.#state === 'applied') s.#timer = deps.clock.setInterval(() => s.check(), deps.recheckMs ?? RECHECK_MS);
    }
    return s;
  }

  private constructor(readonly sliceUs: number, deps: SchedulerSliceDeps) {
    this.#wantNs = sliceUs * 1000;
    this.#deps = deps;
    this.#state = sliceUs === 0 ? 'off' : 'applied';
    if (sliceUs !== 0 && typeof deps.syscalls === 'string') this.#unsupported(deps.syscalls);
  }

  get state(): SliceState {
    return this.#state;
  }

  /** Threads that had the slice at the latest check. */
  get threads(): number {
    return this.#threads;
  }

  /** Gives the slice to every thread that lacks it; after a refusal, nothing. */
  check(): void {
    const sys = this.#deps.syscalls;
    if (this.#state !== 'applied' || typeof sys === 'string') return;
    let tids: number[];
    try {
      tids = (this.#deps.threads ?? ownThreads)();
    } catch (err) {
      return this.#unsupported(`cannot list this process's threads: ${(err as Error).message}`);
    }
    let have = 0;
    for (const tid of tids) {
      const now = sys.get(tid);
      if (now === this.#wantNs) {
        have++;
        continue;
      }
      if (now === -constants.errno.ESRCH) continue; // the thread ended since the listing
      const err = now < 0 ? -now : sys.set(tid, this.sliceUs);
      if (err === constants.errno.ESRCH) continue;
      if (err !== 0) return this.#unsupported(refusal(err));
      // A kernel before custom slices takes sched_runtime under SCHED_OTHER and ignores it.
      const after = sys.get(tid);
      if (after === -constants.errno.ESRCH) continue;
      if (after !== this.#wantNs) return this.#unsupported('this kernel does not keep a custom slice (EEVDF, Linux 6.12 or later)');
      have++;
    }
    this.#threads = have;
    if (!this.#announced) {
      this.#announced = true;
      this.#deps.info({ sliceUs: this.sliceUs, threads: have }, 'scheduler slice set on every thread');
    }
  }

  /** Stops the checks; threads keep the slice they have. Idempotent. */
  close(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }

  #unsupported(reason: string): void {
    this.#state = 'unsupported';
    this.close();
    const say = this.#deps.explicit === false ? this.#deps.info : this.#deps.warn;
    say({ sliceUs: this.sliceUs, reason }, `${this.#deps.setting ?? 'scheduler.sliceUs'} not applied; threads keep the system slice`);
  }
}

function ownThreads(): number[] {
  return readdirSync('/proc/self/task').map(Number);
}

function refusal(errno: number): string {
  const name = Object.entries(constants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
  if (errno === constants.errno.EOPNOTSUPP) return `${name}: a thread runs under a real-time or deadline policy, which has no slice`;
  if (errno === constants.errno.EPERM) return `${name}: sched_setattr was refused (a seccomp filter or a container's policy?)`;
  if (errno === constants.errno.EINVAL || errno === constants.errno.E2BIG) return `${name}: this kernel does not take sched_attr's slice (EEVDF, Linux 6.12 or later)`;
  if (errno === constants.errno.ENOSYS) return `${name}: no sched_setattr on this system`;
  return `sched_setattr failed: ${name}`;
}

/** The addon's slice calls, or why there are none. */
export function addonSliceSyscalls(binding: Pick<NativeBinding, 'schedSlice' | 'schedSliceOf'> | string): SliceSyscalls | string {
  if (typeof binding === 'string') return binding;
  const { schedSlice, schedSliceOf } = binding;
  if (schedSlice === undefined || schedSliceOf === undefined) return 'the native addon was built without it (rebuild it: node native/build.mjs)';
  return { set: (tid, us) => schedSlice(tid, us), get: (tid) => schedSliceOf(tid) };
}

/**
 * The slice of a node's process (`scheduler.sliceUs`): through the addon, so not where the config
 * keeps the process off it (`datapath: js`). `syscalls` replaces the addon's calls (tests).
 */
export function startNodeSlice(
  settings: { readonly sliceUs: number | undefined; readonly datapath: 'auto' | 'native' | 'js' },
  deps: Omit<SchedulerSliceDeps, 'syscalls'> & { readonly syscalls?: SliceSyscalls | string },
): SchedulerSlice {
  const syscalls =
    deps.syscalls ??
    (settings.datapath === 'js'
      ? 'datapath: js keeps the process off the native addon, which sets it'
      : addonSliceSyscalls(((l) => (l.ok ? l.binding : `the native addon does not load: ${l.reason}`))(loadNativeBinding())));
  return SchedulerSlice.start(settings.sliceUs ?? DEFAULT_SLICE_US, { ...deps, syscalls, explicit: settings.sliceUs !== undefined });
}

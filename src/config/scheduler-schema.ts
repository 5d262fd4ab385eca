import { z } from 'zod';
import { expecting } from './issue-text.js';

/** The kernel's bounds of a custom slice (EEVDF clamps sched_runtime to 0.1..100 ms). */
const MIN_US = 100;
const MAX_US = 100_000;
/** The slice when the config sets none (docs/configuration.md, "scheduler", says why). */
export const DEFAULT_SLICE_US = 0;

/**
 * `scheduler:` (docs/configuration.md, "scheduler"): the scheduler slice of every thread of the
 * process, in microseconds; 0 leaves the system's. Read at start; a reload does not change it.
 */
export const schedulerSchema = z
  .strictObject({
    sliceUs: expecting(z.number(), `0 (the system's slice) or ${MIN_US}..${MAX_US} microseconds`)
      .refine((us) => us === 0 || (Number.isInteger(us) && us >= MIN_US && us <= MAX_US), {
        error: (issue) => `expected 0 (the system's slice) or ${MIN_US}..${MAX_US} microseconds; got ${String(issue.input)}`,
      })
      .optional(),
  })
  .prefault({});

export interface SchedulerSettings {
  /** Microseconds; 0 = the system's slice; absent = DEFAULT_SLICE_US (and no warning where it cannot be had). */
  readonly sliceUs?: number;
}

import type { Clock } from '../core/clock.js';
import type { YoungGenerationHeap } from '../core/young-generation.js';
import type { SliceSyscalls } from '../ops/scheduler-slice.js';
import type { KernelCongestion } from '../datapath/congestion.js';
import type { NativeDatapathOptions } from '../datapath/native/native-datapath.js';

/** What a node takes from its process: the clock, where logs go, the config file, native knobs. */
export interface NodeDeps {
  readonly clock: Clock;
  /** Where operational logs go (JSON lines). */
  readonly logDestination: NodeJS.WritableStream;
  /** The config file, for reload (SIGHUP, `lifecycle.watch`); none for a config built in memory. */
  readonly configPath?: string;
  /** Knobs of the native UDP datapath (UDP_SEGMENT, readiness); defaults suit production. */
  readonly udpNative?: NativeDatapathOptions;
  /** The young generation's watch (core/young-generation.ts): the addon's by default, null for none. */
  readonly youngGeneration?: YoungGenerationHeap | null;
  /** The scheduler slice's system calls (ops/scheduler-slice.ts), or why there are none: the addon's by default. */
  readonly schedulerSlice?: SliceSyscalls | string;
  /** The kernel's TCP congestion controls (datapath/congestion.ts): read from /proc by default, null for none shown. */
  readonly kernelCongestion?: KernelCongestion | null;
}

// Kernel flows from conntrack (Linux): docs/conntrack.md.
export { ConntrackSource, type ConntrackSourceDeps, type ConntrackSourceOptions, type ConntrackSourceState } from './conntrack-source.js';
export { nodeSpawn, type ChildProcessLike, type ConntrackStats, type ConntrackStatus, type SpawnProcess } from './source-contract.js';
export { compileDirection, type DirectionOf, type DirectionOptions } from './direction.js';
export {
  ConntrackLineError,
  isConntrackLineError,
  type ConntrackEvent,
  type ConntrackEventType,
  type ConntrackLineErrorReason,
  type ConntrackProto,
  type ConntrackTuple,
} from './event.js';
export { MAX_LINE, parseEventLine } from './event-parser.js';
export { conntrackFlowRecord, endReason, type ConntrackEndReason, type ConntrackFlowRecord, type FlowRecordContext } from './flow-record.js';
export { LineSplitter } from './line-splitter.js';
export { SysctlOverride, procSysctl, type Sysctl } from './sysctl.js';

import type { TagOffloadOptions } from '../datapath/tag-offload.js';
import { TOKEN_PREFIX_BYTES } from '../protocol/udpexposer/constants.js';

/**
 * A udpexposer channel (one tag) handed to the native batch (datapath/tag-offload.ts): its
 * datagrams move plain <-> framed without a JavaScript call each; what the batch moved is read
 * from its counters and folded into the role's own counters in batches (on a sweep, before a
 * datagram of the channel is judged in JavaScript, and whenever the counters are read).
 */
export interface ChannelOffload {
  /** Plain -> framed (the tag added): datagrams and payload bytes. */
  readonly datagramsToFramed: number;
  readonly bytesToFramed: number;
  /** Framed -> plain (the tag stripped). */
  readonly datagramsToPlain: number;
  readonly bytesToPlain: number;
  /** Datagrams the batch could not send, either way. */
  readonly sendErrors: number;
  /** Payload bytes toward the plain side the batch may still forward (reply budget). */
  allowance: number;
  readonly live: boolean;
  close(): void;
}

/** Installs a channel's entries between two peers of the role's sockets, or null where the batch cannot. */
export type ChannelOffloader = (o: TagOffloadOptions) => ChannelOffload | null;

/** What holds a channel's offload: a server's connectee, a client's worker. */
export interface OffloadHolder {
  offload: ChannelOffload | null;
  /** The counters as last folded: datagrams, bytes to framed; datagrams, bytes to plain; send errors. */
  offloadSeen: number[] | null;
}

/** Datagrams and payload bytes, as the roles count them. */
export interface DatagramCount {
  datagrams: number;
  bytes: number;
}

/** How often the batch's counters are folded in without a datagram asking (idle ages, LRU order, budget windows). */
export const FOLD_EVERY_MS = 1000;

/** The tag whose frames begin like a token: in password mode its frames are judged in JavaScript, never offloaded. */
export const TOKEN_TAG = (TOKEN_PREFIX_BYTES[0]! << 8) | TOKEN_PREFIX_BYTES[1]!;

/** Datagrams a channel carries in JavaScript before it is handed over (a one-shot exchange never is). */
export const OFFLOAD_AFTER = 3;

/**
 * What the batch moved for `h` since the last fold, into `d` ([datagrams, bytes] to framed, then
 * to plain, then the datagrams it failed to send); false when nothing. The holder's seen counters
 * move on.
 */
export function foldDeltas(h: OffloadHolder, d: number[]): boolean {
  const o = h.offload;
  const seen = h.offloadSeen;
  if (o === null || seen === null) return false;
  d[0] = o.datagramsToFramed - seen[0]!;
  d[1] = o.bytesToFramed - seen[1]!;
  d[2] = o.datagramsToPlain - seen[2]!;
  d[3] = o.bytesToPlain - seen[3]!;
  d[4] = o.sendErrors - seen[4]!;
  if (d[0] === 0 && d[2] === 0 && d[4] === 0) return false;
  seen[0]! += d[0]!;
  seen[1]! += d[1]!;
  seen[2]! += d[2]!;
  seen[3]! += d[3]!;
  seen[4]! += d[4]!;
  return true;
}

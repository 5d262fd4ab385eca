import { LRUCache } from 'lru-cache';
import { tagBytes } from '../protocol/udpexposer/frame.js';
import type { DatagramChannel, DatagramReceiver } from '../upstream/dialer.js';
import type { ChannelOffload, OffloadHolder } from './channel-offload.js';

/** What a worker reports to the client that owns it. */
export interface WorkerOwner {
  /** A datagram from the target through this worker (a view the datapath may reuse after the call). */
  fromTarget(w: Worker, buf: Buffer): void;
  /** A send or receive on this worker failed (ICMP unreachable, full buffer); counted, the worker stays. */
  workerError(): void;
}

/**
 * One connectee tag's socket to the target. It is its channel's receiver itself, so a datagram
 * from the target reaches the client with no closure or lookup per datagram.
 */
export class Worker implements DatagramReceiver, OffloadHolder {
  /** Null until the channel is open. */
  channel: DatagramChannel | null = null;
  /** Payloads (copies) waiting until the channel is open; null once it is. */
  queue: Buffer[] | null = [];
  closed = false;
  /** Its channel in the native batch (client-offloads.ts), once handed over. */
  offload: ChannelOffload | null = null;
  offloadSeen: number[] | null = null;
  offloadTried = false;
  /** The tag as its two wire bytes, made once: every frame to the server starts with them. */
  readonly tagBytes: Buffer;

  constructor(
    readonly tag: number,
    private readonly owner: WorkerOwner,
  ) {
    this.tagBytes = tagBytes(tag);
  }

  onUpstreamDatagram(buf: Buffer): void {
    if (!this.closed) this.owner.fromTarget(this, buf);
  }

  /** ICMP unreachable: the worker stays, as udpexposer's does, in case the target comes back. */
  onUpstreamError(): void {
    this.owner.workerError();
  }

  onDatagramError(): void {
    this.owner.workerError();
  }
}

/**
 * The client role's workers, one per tag, in an LRU of udpexposer's `-n` entries, promoted by
 * frames from the server (as udpexposer's client does). Evicting or clearing an entry closes its
 * channel: the dispose hook is the one place workers are closed.
 */
export class WorkerTable {
  readonly #lru: LRUCache<number, Worker>;

  constructor(capacity: number, onClosed: (w: Worker) => void) {
    this.#lru = new LRUCache<number, Worker>({
      max: capacity,
      dispose: (w) => {
        // Called first: a worker handed to the batch has its last counts folded in before its socket goes.
        onClosed(w);
        w.closed = true;
        w.queue = null;
        w.channel?.close();
      },
    });
  }

  get size(): number {
    return this.#lru.size;
  }

  /** Promotes and returns the worker for `tag`. */
  get(tag: number): Worker | undefined {
    return this.#lru.get(tag);
  }

  /** Adds a worker, evicting (and closing) the least recently used one when full. */
  add(w: Worker): void {
    this.#lru.set(w.tag, w);
  }

  delete(tag: number): void {
    this.#lru.delete(tag);
  }

  clear(): void {
    this.#lru.clear();
  }
}

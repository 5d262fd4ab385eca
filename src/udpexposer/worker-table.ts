import type dgram from 'node:dgram';
import { LRUCache } from 'lru-cache';

/**
 * The client role's worker sockets, one per tag, in an LRU of udpexposer's `-n` entries,
 * promoted by frames from the server (as udpexposer's client does). Evicting or clearing an
 * entry closes its socket: the dispose hook is the one place sockets are closed.
 */
export interface Worker {
  readonly tag: number;
  /** Null until bound and connected. */
  socket: dgram.Socket | null;
  /** Payloads waiting until the socket is bound and connected; null once it is. */
  queue: Buffer[] | null;
  closed: boolean;
}

export class WorkerTable {
  readonly #lru: LRUCache<number, Worker>;

  constructor(capacity: number, onClosed: (w: Worker) => void) {
    this.#lru = new LRUCache<number, Worker>({
      max: capacity,
      dispose: (w) => {
        w.closed = true;
        w.queue = null;
        try {
          w.socket?.close();
        } catch {
          // already closed (bind failed, or the socket errored out)
        }
        onClosed(w);
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

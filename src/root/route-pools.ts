import type { Clock } from '../core/clock.js';
import type { RouteConfig } from '../config/types.js';
import type { EventStream } from '../observe/events.js';
import type { StreamDatapath } from '../datapath/stream-datapath.js';
import type { DatagramChannel, DatagramDialer, DatagramReceiver, DialedStream, DialOptions, OpenOptions, StreamDialer } from '../upstream/dialer.js';
import { isSocketDialer, type DialedConn, type SocketDialer } from '../upstream/direct/socket-dial.js';
import type { HostPort } from '../core/address.js';
import { RoutePool } from '../upstream/pool/route-pool.js';
import type { NameResolver } from '../upstream/pool/name-members.js';
import type { PoolView } from '../upstream/pool/pool.js';

export interface RoutePoolsDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly stream: StreamDialer;
  readonly datagram: DatagramDialer;
  readonly resolver?: NameResolver;
}

/** The dialers a route is built with: its pool's while it has one, the node's otherwise (read at each flow's dial). */
export interface RouteDialers {
  readonly stream: StreamDialer & SocketDialer;
  readonly datagram: DatagramDialer;
}

/**
 * The pools of the config's pooled routes (docs/pools.md), by route name. A route's dialers look
 * its pool up at each dial, so a reload that makes a route pooled, changes its members or makes
 * it single again needs no new listener, and live sessions stay where they are.
 */
export class RoutePools {
  readonly #pools = new Map<string, RoutePool>();

  constructor(private readonly deps: RoutePoolsDeps) {}

  /** Starts, updates and closes pools to match `routes`. */
  async apply(routes: readonly RouteConfig[]): Promise<void> {
    const wanted = new Map(routes.filter((r) => r.pool).map((r) => [r.name, r]));
    for (const [name, p] of this.#pools) {
      if (wanted.has(name) && wanted.get(name)!.listen.transport === p.transport) continue;
      p.close();
      this.#pools.delete(name);
    }
    await Promise.all(
      [...wanted.values()].map(async (r) => {
        const live = this.#pools.get(r.name);
        if (live) return live.update(r.pool!);
        this.#pools.set(r.name, await RoutePool.start(r.name, r.listen.transport, r.pool!, this.deps));
      }),
    );
  }

  dialersFor(name: string): RouteDialers {
    const { stream, datagram } = this.deps;
    const pools = this.#pools;
    return {
      stream: {
        dial: (target: HostPort, opts: DialOptions): Promise<DialedStream> => (pools.get(name)?.stream ?? stream).dial(target, opts),
        dialConn: (target: HostPort, opts: DialOptions, datapath: StreamDatapath): Promise<DialedConn> | undefined => {
          const p = pools.get(name);
          if (p) return p.stream.dialConn(target, opts, datapath);
          return isSocketDialer(stream) ? stream.dialConn(target, opts, datapath) : undefined;
        },
      },
      datagram: {
        open: (target: HostPort, receiver: DatagramReceiver, opts: OpenOptions): Promise<DatagramChannel> => (pools.get(name)?.datagram ?? datagram).open(target, receiver, opts),
      },
    };
  }

  view(name: string): PoolView | undefined {
    return this.#pools.get(name)?.pool.view();
  }

  close(): void {
    for (const p of this.#pools.values()) p.close();
    this.#pools.clear();
  }
}

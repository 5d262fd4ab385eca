import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { Clock, Timer } from '../core/clock.js';
import type { FleetRedisTarget, FleetSettings } from '../config/fleet-settings.js';

/** `ok`: commands and the subscription both work. `degraded`: Redis is unreachable; fleet parts use local state. */
export type FleetLinkStatus = 'ok' | 'degraded';

/**
 * The one connection of a gateway to its fleet's Redis (docs/fleet.md), shared by membership,
 * fleet-wide limits, bans and peer signalling. Every key and channel goes through `key`, so the
 * configured prefix is applied in one place.
 *
 * Contracts:
 * - `commands` never queues while Redis is down: a command then rejects at once (callers treat a
 *   rejection as "Redis unavailable" and fall back to local state), so nothing piles up in memory.
 * - `subscribe` handlers survive reconnects (the subscription is renewed by the client); a
 *   handler must not throw. Messages published while Redis was down are lost: parts that need
 *   the state re-read or re-write it on `onStatus('ok')`.
 * - `onStatus` listeners run on every change, `ok` after any outage included (re-register there).
 * - `close` is idempotent; aborting the signal given to `open` closes too.
 */
export interface FleetLink {
  readonly name: string;
  readonly status: FleetLinkStatus;
  /** Why the link is degraded (the last connection error), while it is. */
  readonly lastError: string | undefined;
  /** Monotonic ms when the link last changed status. */
  readonly since: number;
  /** `prefix` + parts joined by `:`. */
  key(...parts: string[]): string;
  /** The command connection (no offline queue). */
  readonly commands: Redis;
  /** Publishes on the prefixed channel; false when Redis is down (the message is dropped). */
  publish(channel: string, message: string): boolean;
  /** Receives messages of the prefixed channel; returns the way to stop. */
  subscribe(channel: string, onMessage: (message: string) => void): () => void;
  onStatus(listener: (status: FleetLinkStatus) => void): () => void;
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

/** ioredis options for `target`: reconnect forever with a capped backoff, fail fast while down. */
export function redisOptions(target: FleetRedisTarget, role: 'commands' | 'subscriber'): RedisOptions {
  const tls = target.tls
    ? { ...(target.tls.ca ? { ca: readFileSync(target.tls.ca) } : {}), ...(target.tls.serverName ? { servername: target.tls.serverName } : {}) }
    : undefined;
  const common: RedisOptions = {
    db: target.db,
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    connectionName: `sluice-${role}`,
    lazyConnect: true,
    // Subscriptions must wait for the connection; commands must not (see FleetLink).
    enableOfflineQueue: role === 'subscriber',
    maxRetriesPerRequest: role === 'subscriber' ? null : 0,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    autoResubscribe: true,
  };
  if (target.sentinelMaster === undefined) return { ...common, host: target.hosts[0]!.host, port: target.hosts[0]!.port, ...(tls ? { tls } : {}) };
  return {
    ...common,
    sentinels: target.hosts.map((h) => ({ host: h.host, port: h.port })),
    name: target.sentinelMaster,
    sentinelRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    ...(tls ? { tls, enableTLSForSentinelMode: true } : {}),
  };
}

class RedisFleetLink implements FleetLink {
  readonly commands: Redis;
  readonly #sub: Redis;
  readonly #prefix: string;
  readonly #handlers = new Map<string, Set<(m: string) => void>>();
  readonly #listeners = new Set<(s: FleetLinkStatus) => void>();
  #status: FleetLinkStatus = 'degraded';
  #lastError: string | undefined = 'connecting';
  #since: number;
  #closing: Promise<void> | undefined;
  #resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => (this.#resolveClosed = r));

  constructor(
    readonly name: string,
    settings: FleetSettings,
    private readonly clock: Clock,
  ) {
    this.#prefix = settings.keyPrefix;
    this.#since = clock.now();
    this.commands = new Redis(redisOptions(settings.redis, 'commands'));
    this.#sub = new Redis(redisOptions(settings.redis, 'subscriber'));
    for (const c of [this.commands, this.#sub]) {
      c.on('ready', () => this.#update());
      c.on('close', () => this.#update());
      c.on('end', () => this.#update());
      c.on('error', (err: Error) => {
        this.#lastError = err.message;
        this.#update();
      });
    }
    this.#sub.on('message', (channel: string, message: string) => {
      for (const h of this.#handlers.get(channel) ?? []) h(message);
    });
  }

  get status(): FleetLinkStatus {
    return this.#status;
  }

  get lastError(): string | undefined {
    return this.#status === 'ok' ? undefined : this.#lastError;
  }

  get since(): number {
    return this.#since;
  }

  key(...parts: string[]): string {
    return this.#prefix + parts.join(':');
  }

  connect(): void {
    this.commands.connect().catch(() => {});
    this.#sub.connect().catch(() => {});
  }

  publish(channel: string, message: string): boolean {
    if (this.#status !== 'ok') return false;
    this.commands.publish(this.key(channel), message).catch(() => {});
    return true;
  }

  subscribe(channel: string, onMessage: (message: string) => void): () => void {
    const full = this.key(channel);
    let set = this.#handlers.get(full);
    if (!set) {
      this.#handlers.set(full, (set = new Set()));
      this.#sub.subscribe(full).catch(() => {});
    }
    set.add(onMessage);
    return () => {
      set.delete(onMessage);
      if (set.size === 0 && this.#handlers.get(full) === set) {
        this.#handlers.delete(full);
        if (!this.#closing) this.#sub.unsubscribe(full).catch(() => {});
      }
    };
  }

  onStatus(listener: (status: FleetLinkStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #update(): void {
    if (this.#closing) return;
    const next: FleetLinkStatus = this.commands.status === 'ready' && this.#sub.status === 'ready' ? 'ok' : 'degraded';
    if (next === this.#status) return;
    this.#status = next;
    this.#since = this.clock.now();
    for (const l of [...this.#listeners]) l(next);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#status = 'degraded';
      this.#lastError = 'closed';
      this.#listeners.clear();
      this.#handlers.clear();
      await Promise.allSettled([quit(this.commands), quit(this.#sub)]);
      this.#resolveClosed();
    })();
    return this.#closing;
  }
}

/**
 * Drops the connection and stops reconnecting. Not QUIT: with Redis gone, a QUIT would wait in the
 * subscriber's offline queue forever; every reply this gateway needs was awaited before close.
 */
async function quit(c: Redis): Promise<void> {
  c.disconnect(false);
}

/**
 * Opens the link and waits until Redis answers or `waitMs` passed, whichever comes first: a
 * gateway whose Redis is down starts anyway, `degraded`, and joins when Redis comes.
 */
export async function openFleetLink(settings: FleetSettings, clock: Clock, signal: AbortSignal, waitMs = 2000): Promise<FleetLink> {
  const link = new RedisFleetLink(settings.name, settings, clock);
  const onAbort = () => void link.close();
  signal.addEventListener('abort', onAbort, { once: true });
  void link.closed.then(() => signal.removeEventListener('abort', onAbort));
  if (signal.aborted) {
    await link.close();
    return link;
  }
  let timer: Timer | undefined;
  let stop = () => {};
  const ready = new Promise<void>((resolve) => {
    timer = clock.setTimeout(resolve, waitMs);
    stop = link.onStatus((s) => s === 'ok' && resolve());
  });
  link.connect();
  await ready;
  timer?.cancel();
  stop();
  return link;
}

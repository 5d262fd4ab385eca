import type { ServerResponse } from 'node:http';
import type { Clock, Timer } from '../core/clock.js';
import type { RouteRuntime } from '../listen/route.js';
import { zeroCounters, type FlowCounters, type Sink, type SluiceEvent } from '../observe/events.js';
import { sessionView, type SessionView } from './views.js';

/** Streams at once; one more is refused with 503. */
export const MAX_STREAMS = 16;
/** Events carried per tick; the rest of a burst is only counted (`eventsDropped`). */
export const MAX_EVENTS_PER_TICK = 100;
/** Sessions listed per tick (their counters); `sessionsTotal` still counts them all. */
export const MAX_SESSIONS_PER_TICK = 200;
/** A stream whose socket holds more unsent bytes than this misses ticks; after 10 missed in a row it is closed. */
const MAX_UNSENT_BYTES = 1024 * 1024;
const MAX_MISSED_TICKS = 10;

/** One `tick` message of the live stream (docs/admin.md). */
export interface LiveTick {
  at: number;
  /** Totals since this process started: ended flows plus the live flows' counters so far. */
  totals: FlowCounters;
  routes: { name: string; active: number }[];
  sessionsTotal: number;
  sessions: SessionView[];
  events: LiveEvent[];
  eventsDropped: number;
}

/** Events as the stream carries them: small, and without anything the API does not show either. */
export type LiveEvent =
  | { type: 'session-started' | 'session-ended'; at: number; flowId: number; route: string; proto: string; clientAddr: string; clientPort: number; reason?: string }
  | { type: 'session-rejected'; at: number; route: string; proto: string; clientAddr: string; clientPort: number; reason: string }
  | { type: 'route-up' | 'route-down'; at: number; route: string }
  | { type: 'config-reloaded' | 'config-rejected'; at: number }
  /** A peer link changed state or path (the dashboard then reloads /api/peers). */
  | { type: 'peer-path'; at: number; peer: string; state: string; path: string };

interface Stream {
  readonly res: ServerResponse;
  missed: number;
}

/**
 * Server-sent events for the dashboard (WHATWG HTML §9.2). Every `intervalMs` (1 s), while at
 * least one stream is open, it sends each stream a `tick`: totals, per-route active counts, the
 * live sessions' counters, and the events since the last tick. Memory is bounded whatever the
 * event rate: at most MAX_EVENTS_PER_TICK events are held, at most MAX_STREAMS streams are open,
 * and a stream that cannot keep up skips ticks and is then closed, never buffered without end.
 */
export class LiveHub {
  readonly #streams = new Set<Stream>();
  #pending: LiveEvent[] = [];
  #dropped = 0;
  readonly #ended: FlowCounters = zeroCounters();
  #timer: Timer | undefined;

  constructor(
    private readonly deps: { clock: Clock; routes: () => readonly RouteRuntime[]; intervalMs?: number },
  ) {}

  get streams(): number {
    return this.#streams.size;
  }

  readonly sink: Sink = (e: SluiceEvent) => {
    if (e.type === 'session-ended') {
      const c = e.counters;
      this.#ended.bytesFromClient += c.bytesFromClient;
      this.#ended.bytesToClient += c.bytesToClient;
      this.#ended.packetsFromClient += c.packetsFromClient;
      this.#ended.packetsToClient += c.packetsToClient;
    }
    if (this.#streams.size === 0) return;
    const live = liveEvent(e);
    if (!live) return;
    if (this.#pending.length >= MAX_EVENTS_PER_TICK) this.#dropped++;
    else this.#pending.push(live);
  };

  /** Takes over `res` as an event stream; false (and nothing written) when the limit is reached. */
  open(res: ServerResponse): boolean {
    if (this.#streams.size >= MAX_STREAMS) return false;
    const stream: Stream = { res, missed: 0 };
    this.#streams.add(stream);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 3000\n\n');
    res.on('close', () => {
      this.#streams.delete(stream);
      if (this.#streams.size === 0) this.#stopTimer();
    });
    this.#send(stream, `event: tick\ndata: ${JSON.stringify(this.#tick([], 0))}\n\n`);
    this.#timer ??= this.deps.clock.setInterval(() => this.flush(), this.deps.intervalMs ?? 1000);
    return true;
  }

  /** Sends a tick to every stream now (the timer calls this). */
  flush(): void {
    if (this.#streams.size === 0) return;
    const msg = `event: tick\ndata: ${JSON.stringify(this.#tick(this.#pending, this.#dropped))}\n\n`;
    this.#pending = [];
    this.#dropped = 0;
    for (const s of this.#streams) this.#send(s, msg);
  }

  /** Ends every stream (shutdown). */
  close(): void {
    this.#stopTimer();
    for (const s of this.#streams) s.res.end();
    this.#streams.clear();
  }

  #send(s: Stream, msg: string): void {
    if (s.res.writableLength > MAX_UNSENT_BYTES) {
      if (++s.missed >= MAX_MISSED_TICKS) s.res.destroy();
      return;
    }
    s.missed = 0;
    s.res.write(msg);
  }

  #stopTimer(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #tick(events: LiveEvent[], dropped: number): LiveTick {
    const routes = this.deps.routes();
    const now = this.deps.clock.wallNow();
    const totals = { ...this.#ended };
    const sessions: SessionView[] = [];
    let sessionsTotal = 0;
    for (const r of routes) {
      for (const s of r.sessions()) {
        sessionsTotal++;
        totals.bytesFromClient += s.bytesFromClient;
        totals.bytesToClient += s.bytesToClient;
        totals.packetsFromClient += s.packetsFromClient;
        totals.packetsToClient += s.packetsToClient;
        if (sessions.length < MAX_SESSIONS_PER_TICK) sessions.push(sessionView(s, now));
      }
    }
    return {
      at: now,
      totals,
      routes: routes.map((r) => ({ name: r.name, active: r.active })),
      sessionsTotal,
      sessions,
      events,
      eventsDropped: dropped,
    };
  }
}

function liveEvent(e: SluiceEvent): LiveEvent | undefined {
  switch (e.type) {
    case 'session-started':
      return { type: e.type, at: e.at, flowId: e.flow.id, route: e.flow.route, proto: e.flow.proto, clientAddr: e.flow.client.address, clientPort: e.flow.client.port };
    case 'session-ended':
      return { type: e.type, at: e.at, flowId: e.flow.id, route: e.flow.route, proto: e.flow.proto, clientAddr: e.flow.client.address, clientPort: e.flow.client.port, reason: e.reason };
    case 'session-rejected':
      return { type: e.type, at: e.at, route: e.route, proto: e.proto, clientAddr: e.client.address, clientPort: e.client.port, reason: e.reason };
    case 'route-up':
    case 'route-down':
      return { type: e.type, at: e.at, route: e.route };
    case 'config-reloaded':
    case 'config-rejected':
      return { type: e.type, at: e.at };
    case 'peer-path':
      return { type: e.type, at: e.at, peer: e.peer, state: e.state, path: e.path };
    default:
      return undefined;
  }
}

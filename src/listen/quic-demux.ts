import { canonicalIp, ipv4PortKey, type Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import type { ListenerReceiver } from '../datapath/udp-datapath.js';
import type { EventStream, RejectReason } from '../observe/events.js';
import { QuicInitialReader } from '../protocol/quic/initial-reader.js';
import type { RouteMatch } from '../config/route-match.js';
import { pickRoute } from './sni-router.js';

/** How long a new client has to deliver its whole ClientHello in Initial packets. */
export const QUIC_HELLO_TIMEOUT_MS = 5_000;
/** New clients whose ClientHello is still being gathered, per shared address. */
export const MAX_PENDING_QUIC_CLIENTS = 1024;
/** Bytes of datagrams held for one pending client (delivered to its route once it is picked). */
export const MAX_PENDING_QUIC_BYTES = 32_768;
/**
 * Client addresses pinned to a route, per shared address. A pin is made before the route's own
 * admission runs (which may refuse the session), so without a bound spoofed Initials could grow
 * the map until the idle timeout; when full, new clients are refused until pins expire.
 */
export const MAX_QUIC_PINS = 65_536;
/** A client refused before a route was picked stays refused (its datagrams dropped silently) this long. */
export const QUIC_REFUSED_MS = 5_000;

/** A route on a shared UDP address: its `match` (absent = the default) and what takes its datagrams. */
export interface QuicMember {
  readonly config: { readonly match?: RouteMatch };
  readonly receiver: ListenerReceiver;
}

/** A client address: ip*65536+port for IPv4 (mapped ones too), `ip|port` otherwise. */
type ClientKey = number | string;

interface Pending {
  readonly address: string;
  readonly port: number;
  readonly reader: QuicInitialReader;
  readonly datagrams: Buffer[];
  bytes: number;
  readonly since: number;
}

interface Pin {
  readonly member: QuicMember;
  seen: number;
}

export interface QuicDemuxDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  /** How long a client address stays pinned to its route after its last datagram (the routes' UDP idle timeout). */
  readonly pinIdleMs: () => number;
  /** Default MAX_QUIC_PINS. */
  readonly maxPins?: number;
}

/**
 * Routes the datagrams of one shared UDP address by the server name in each new client's QUIC
 * Initial packets (docs/sni.md). A client address is new until a route is picked: its datagrams
 * are held (bounded) while the ClientHello is gathered, then handed to the route in arrival
 * order; from then on the address is pinned and every datagram from it goes straight there.
 * Not QUIC, or no complete ClientHello in time: the default route (no `match`) takes the
 * client, else it is refused under the bound address (`udp://ip:port`) as the route name.
 */
export class QuicDemux implements ListenerReceiver {
  readonly #members = new Set<QuicMember>();
  readonly #pins = new Map<ClientKey, Pin>();
  readonly #pending = new Map<ClientKey, Pending>();
  readonly #refused = new Map<ClientKey, number>();
  #sweep: Timer | undefined;

  constructor(
    private readonly label: string,
    private readonly deps: QuicDemuxDeps,
  ) {
    this.#sweep = deps.clock.setInterval(() => this.#expire(), 250);
  }

  get members(): number {
    return this.#members.size;
  }

  get pending(): number {
    return this.#pending.size;
  }

  join(m: QuicMember): void {
    this.#members.add(m);
  }

  /** No new client goes to `m` (it drains); clients pinned to it stay there. */
  leaveNew(m: QuicMember): void {
    this.#members.delete(m);
  }

  /** No new client goes to `m`; clients pinned to it are forgotten (their next datagram is routed anew). */
  leave(m: QuicMember): void {
    this.#members.delete(m);
    for (const [k, p] of this.#pins) if (p.member === m) this.#pins.delete(k);
  }

  close(): void {
    this.#sweep?.cancel();
    this.#sweep = undefined;
    this.#pins.clear();
    this.#pending.clear();
    this.#refused.clear();
  }

  /** A pinned IPv4 client's datagram is found and handed on without a string (ListenerReceiver.onDatagramV4). */
  onDatagramV4(buf: Buffer, ipv4: number, port: number): void {
    const pin = this.#pins.get(ipv4 * 65536 + port);
    const r = pin?.member.receiver;
    if (pin !== undefined && r!.onDatagramV4 !== undefined) {
      pin.seen = this.deps.clock.now();
      r!.onDatagramV4(buf, ipv4, port);
    } else this.onDatagram(buf, `${ipv4 >>> 24}.${(ipv4 >>> 16) & 255}.${(ipv4 >>> 8) & 255}.${ipv4 & 255}`, port);
  }

  onDatagram(buf: Buffer, address: string, port: number): void {
    const v4 = ipv4PortKey(address, port);
    const key: ClientKey = v4 >= 0 ? v4 : `${address}|${port}`;
    const pin = this.#pins.get(key);
    if (pin !== undefined) {
      pin.seen = this.deps.clock.now();
      pin.member.receiver.onDatagram(buf, address, port);
      return;
    }
    if (this.#sweep === undefined || this.#refused.has(key)) return;
    let p = this.#pending.get(key);
    if (p === undefined) {
      if (this.#pending.size >= MAX_PENDING_QUIC_CLIENTS) return this.#refuse(key, address, port, 'limit-route-sessions', 'too many QUIC ClientHellos pending', false);
      p = { address, port, reader: new QuicInitialReader(), datagrams: [], bytes: 0, since: this.deps.clock.now() };
      this.#pending.set(key, p);
    }
    if (p.bytes + buf.length > MAX_PENDING_QUIC_BYTES) return this.#decide(key, address, port, p, { kind: 'error', reason: 'too-large' });
    p.datagrams.push(Buffer.from(buf)); // the datapath may reuse `buf`
    p.bytes += buf.length;
    const step = p.reader.push(buf);
    if (step.kind !== 'need-more') this.#decide(key, address, port, p, step);
  }

  onSendError(err: Error): void {
    for (const m of this.#members) return m.receiver.onSendError(err);
  }

  #decide(key: ClientKey, address: string, port: number, p: Pending, step: ReturnType<QuicInitialReader['push']> | { kind: 'timeout' }): void {
    this.#pending.delete(key);
    let member: QuicMember | undefined;
    if (step.kind === 'done') {
      member = pickRoute(this.#members, step.quic.hello);
      if (member === undefined) {
        const name = step.quic.hello.serverName;
        return this.#refuse(key, address, port, 'no-route-for-name', name === undefined ? 'no server name' : `name ${name}`, true);
      }
    } else {
      member = this.#default();
      if (member === undefined) {
        if (step.kind === 'timeout') return this.#refuse(key, address, port, 'client-hello-timeout', undefined, true);
        return this.#refuse(key, address, port, 'client-hello-invalid', step.kind === 'error' ? `quic ${step.reason}` : undefined, true);
      }
    }
    if (this.#pins.size >= (this.deps.maxPins ?? MAX_QUIC_PINS)) return this.#refuse(key, address, port, 'limit-route-sessions', 'too many QUIC clients pinned', false);
    this.#pins.set(key, { member, seen: this.deps.clock.now() });
    for (const d of p.datagrams) member.receiver.onDatagram(d, address, port);
  }

  #default(): QuicMember | undefined {
    for (const m of this.#members) if (m.config.match === undefined) return m;
    return undefined;
  }

  #refuse(key: ClientKey, address: string, port: number, reason: RejectReason, detail: string | undefined, remember: boolean): void {
    if (remember && this.#refused.size < MAX_PENDING_QUIC_CLIENTS) this.#refused.set(key, this.deps.clock.now());
    const canon = canonicalIp(address);
    const client: Endpoint = { address: canon?.address ?? address, port, family: canon?.family ?? 4 };
    const { clock, events } = this.deps;
    events.emit({ type: 'session-rejected', at: clock.wallNow(), route: this.label, proto: 'udp', client, reason, ...(detail ? { detail } : {}) });
  }

  #expire(): void {
    const now = this.deps.clock.now();
    for (const [key, p] of this.#pending) {
      if (now - p.since < QUIC_HELLO_TIMEOUT_MS) continue;
      this.#decide(key, p.address, p.port, p, { kind: 'timeout' });
    }
    for (const [key, at] of this.#refused) if (now - at >= QUIC_REFUSED_MS) this.#refused.delete(key);
    const idle = this.deps.pinIdleMs();
    if (idle > 0) for (const [key, pin] of this.#pins) if (now - pin.seen >= idle) this.#pins.delete(key);
  }
}

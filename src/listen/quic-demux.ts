import { canonicalIp, ipv4PortKey, type Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import type { ListenerReceiver } from '../datapath/udp-datapath.js';
import type { EventStream, RejectReason } from '../observe/events.js';
import { QuicInitialReader } from '../protocol/quic/initial-reader.js';
import { quicVersionParams } from '../protocol/quic/initial-keys.js';
import { isInitialPacket, isVersionNegotiation, longHeaderIds } from '../protocol/quic/packet-ids.js';
import { pickRoute } from './sni-router.js';
import { MAX_ADDRESSES_PER_CONN, QuicConnTable, type ClientKey, type QuicConn, type QuicMember, type QuicPin } from './quic-conns.js';

export type { QuicMember } from './quic-conns.js';

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

/** A connection whose ClientHello is being gathered: from a new address, or a new DCID from a pinned one. */
interface Pending {
  readonly address: string;
  readonly port: number;
  readonly reader: QuicInitialReader;
  readonly datagrams: Buffer[];
  bytes: number;
  readonly since: number;
  /** A new connection from a pinned address: its DCID (its other Initials are held too). */
  readonly dcid?: Buffer;
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
 * Routes the datagrams of one shared UDP address by the server name in each new QUIC
 * connection's Initial packets (docs/sni.md). A client address is new until a route is picked:
 * its datagrams are held (bounded) while the ClientHello is gathered, then handed to the route in
 * arrival order; from then on the address is pinned. Not QUIC, or no complete ClientHello in time:
 * the default route (no `match`) takes the client, else it is refused under the bound address
 * (`udp://ip:port`) as the route name.
 *
 * Connections are tracked by their IDs too (quic-conns.ts): the client's first DCID, and the
 * server's Source Connection IDs seen in its long-header replies (`learnReply`). From a pinned
 * address, a short header goes to the connection whose ID starts it (else the address's latest);
 * a long header with a known DCID to its connection; an Initial with an unknown DCID that opens
 * with that DCID's keys is a new connection, routed by its own name. From a new address, a packet
 * whose DCID is a known connection's follows that connection (NAT rebinding, migration), up to
 * MAX_ADDRESSES_PER_CONN addresses; the route's admission then runs for the new address as for
 * any new client. Unknown versions (including Version Negotiation) from a pinned address follow
 * the address; the server's Version Negotiation replies pass through unchanged.
 */
export class QuicDemux implements ListenerReceiver {
  readonly #members = new Set<QuicMember>();
  readonly #conns = new QuicConnTable();
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
    this.#conns.forget(m);
  }

  /** Client addresses pinned now. */
  get pins(): number {
    return this.#conns.size;
  }

  close(): void {
    this.#sweep?.cancel();
    this.#sweep = undefined;
    this.#conns.clear();
    this.#pending.clear();
    this.#refused.clear();
  }

  /** A pinned IPv4 client's short header is handed on without a string (ListenerReceiver.onDatagramV4). */
  onDatagramV4(buf: Buffer, ipv4: number, port: number): void {
    const pin = this.#conns.pins.get(ipv4 * 65536 + port);
    if (pin !== undefined && (buf[0]! & 0x80) === 0) {
      const r = (pin.conns.length === 1 ? pin.member : this.#conns.shortHeader(pin, buf)).receiver;
      if (r.onDatagramV4 !== undefined) {
        pin.seen = this.deps.clock.now();
        return r.onDatagramV4(buf, ipv4, port);
      }
    }
    this.onDatagram(buf, `${ipv4 >>> 24}.${(ipv4 >>> 16) & 255}.${(ipv4 >>> 8) & 255}.${ipv4 & 255}`, port);
  }

  onDatagram(buf: Buffer, address: string, port: number): void {
    const v4 = ipv4PortKey(address, port);
    const key: ClientKey = v4 >= 0 ? v4 : `${address}|${port}`;
    const pin = this.#conns.pins.get(key);
    if (pin !== undefined) {
      pin.seen = this.deps.clock.now();
      return this.#pinned(key, pin, buf, address, port);
    }
    if (this.#sweep === undefined || this.#refused.has(key)) return;
    let p = this.#pending.get(key);
    if (p === undefined) {
      const known = this.#known(buf);
      if (known !== undefined && known.addresses < MAX_ADDRESSES_PER_CONN && this.#conns.size < (this.deps.maxPins ?? MAX_QUIC_PINS)) {
        // A known connection from a new address: it follows its connection (docs/sni.md, "Connection IDs").
        this.#conns.attach(key, known, this.deps.clock.now());
        return known.member.receiver.onDatagram(buf, address, port);
      }
      if (this.#pending.size >= MAX_PENDING_QUIC_CLIENTS) return this.#refuse(key, address, port, 'limit-route-sessions', 'too many QUIC ClientHellos pending', false);
      p = { address, port, reader: new QuicInitialReader(), datagrams: [], bytes: 0, since: this.deps.clock.now() };
      this.#pending.set(key, p);
    }
    this.#hold(key, p, buf, p.reader.push(buf));
  }

  /**
   * What a server sent to a client of this address (the shared routes' replies): a long header's
   * Source Connection ID becomes one of the connection's IDs. Short headers are not looked at.
   */
  learnReply(buf: Buffer, address: string, port: number): void {
    const ids = longHeaderIds(buf);
    if (ids === undefined || isVersionNegotiation(ids)) return;
    const v4 = ipv4PortKey(address, port);
    this.#conns.learn(v4 >= 0 ? v4 : `${address}|${port}`, ids.dcid, ids.scid);
  }

  /** The connection a new address's packet names: a v1/v2 long header's DCID, or a short header starting with a known ID. */
  #known(buf: Buffer): QuicConn | undefined {
    if ((buf[0]! & 0x80) === 0) return this.#conns.byShortHeader(buf);
    if (buf.length < 7 || quicVersionParams(buf.readUInt32BE(1)) === undefined) return undefined;
    const ids = longHeaderIds(buf);
    return ids && this.#conns.byCid(ids.dcid);
  }

  /** A datagram from a pinned address: to its connection, or the start of a new connection. */
  #pinned(key: ClientKey, pin: QuicPin, buf: Buffer, address: string, port: number): void {
    if ((buf[0]! & 0x80) === 0) {
      const m = pin.conns.length === 1 ? pin.member : this.#conns.shortHeader(pin, buf);
      return m.receiver.onDatagram(buf, address, port);
    }
    // Unknown versions (a Version Negotiation, a greased version) and what is not QUIC follow the address.
    const ids = buf.length >= 7 && quicVersionParams(buf.readUInt32BE(1)) !== undefined ? longHeaderIds(buf) : undefined;
    if (ids === undefined) return pin.member.receiver.onDatagram(buf, address, port);
    const p = this.#pending.get(key);
    if (p !== undefined && p.dcid !== undefined && p.dcid.equals(ids.dcid)) return this.#hold(key, p, buf, p.reader.push(buf));
    const conn = this.#conns.byCid(ids.dcid);
    if (conn !== undefined) {
      if (!pin.conns.includes(conn) && conn.addresses < MAX_ADDRESSES_PER_CONN) this.#conns.attach(key, conn, this.deps.clock.now());
      return conn.member.receiver.onDatagram(buf, address, port);
    }
    // An Initial with a DCID never seen: a new connection if it opens with its own DCID's keys;
    // else one of this address's connections after the server's reply (keys of its first DCID).
    if (p !== undefined || !isInitialPacket(ids) || this.#pending.size >= MAX_PENDING_QUIC_CLIENTS) return pin.member.receiver.onDatagram(buf, address, port);
    const reader = new QuicInitialReader();
    const step = reader.push(buf);
    if (step.kind === 'error') return pin.member.receiver.onDatagram(buf, address, port);
    const next: Pending = { address, port, reader, datagrams: [], bytes: 0, since: this.deps.clock.now(), dcid: Buffer.from(ids.dcid) };
    this.#pending.set(key, next);
    this.#hold(key, next, buf, step);
  }

  /** Holds `buf` (bounded) for the pending connection and decides once the reader has. */
  #hold(key: ClientKey, p: Pending, buf: Buffer, step: ReturnType<QuicInitialReader['push']>): void {
    if (p.bytes + buf.length > MAX_PENDING_QUIC_BYTES) return this.#decide(key, p.address, p.port, p, { kind: 'error', reason: 'too-large' });
    p.datagrams.push(Buffer.from(buf)); // the datapath may reuse `buf`
    p.bytes += buf.length;
    if (step.kind !== 'need-more') this.#decide(key, p.address, p.port, p, step);
  }

  onSendError(err: Error): void {
    for (const m of this.#members) return m.receiver.onSendError(err);
  }

  /**
   * Picks the route of a pending connection. From a new address a refusal is remembered (its
   * datagrams are dropped for QUIC_REFUSED_MS); from a pinned one it is not (the address has a
   * live connection), and the held datagrams are dropped.
   */
  #decide(key: ClientKey, address: string, port: number, p: Pending, step: ReturnType<QuicInitialReader['push']> | { kind: 'timeout' }): void {
    this.#pending.delete(key);
    const pinned = p.dcid !== undefined && this.#conns.pins.has(key);
    let member: QuicMember | undefined;
    if (step.kind === 'done') {
      member = pickRoute(this.#members, step.quic.hello);
      if (member === undefined) {
        const name = step.quic.hello.serverName;
        return this.#refuse(key, address, port, 'no-route-for-name', name === undefined ? 'no server name' : `name ${name}`, !pinned);
      }
    } else {
      member = this.#default();
      if (member === undefined) {
        if (step.kind === 'timeout') return this.#refuse(key, address, port, 'client-hello-timeout', undefined, !pinned);
        return this.#refuse(key, address, port, 'client-hello-invalid', step.kind === 'error' ? `quic ${step.reason}` : undefined, !pinned);
      }
    }
    if (!pinned && this.#conns.size >= (this.deps.maxPins ?? MAX_QUIC_PINS)) return this.#refuse(key, address, port, 'limit-route-sessions', 'too many QUIC clients pinned', false);
    const q = step.kind === 'done' ? step.quic : undefined;
    this.#conns.add(key, member, this.deps.clock.now(), q?.dcid, q?.scid);
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
    if (idle > 0) for (const [key, pin] of this.#conns.pins) if (now - pin.seen >= idle) this.#conns.unpin(key);
  }
}

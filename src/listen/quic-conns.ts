import type { ListenerReceiver } from '../datapath/udp-datapath.js';
import type { RouteMatch } from '../config/route-match.js';

/** A route on a shared UDP address: its `match` (absent = the default) and what takes its datagrams. */
export interface QuicMember {
  readonly config: { readonly match?: RouteMatch };
  readonly receiver: ListenerReceiver;
}

/** A client address: ip*65536+port for IPv4 (mapped ones too), `ip|port` otherwise. */
export type ClientKey = number | string;

/** Connection IDs kept per connection: the client's first DCID, and the server's IDs seen in its long headers (a Retry adds one). */
export const MAX_CIDS_PER_CONN = 4;
/** Client addresses one connection is followed to (its first, then NAT rebindings): a leaked ID opens no more. */
export const MAX_ADDRESSES_PER_CONN = 4;
/** Connections kept per client address (one UDP socket opening several): past it the oldest is forgotten there. */
export const MAX_CONNS_PER_ADDRESS = 8;

/**
 * One QUIC connection whose route is picked: found by its client address (pins) and by its
 * connection IDs (`cids`, as latin1 strings). A client that is not QUIC (taken by the default
 * route) is a connection without IDs.
 */
export interface QuicConn {
  readonly member: QuicMember;
  /** The client's Source Connection ID: the DCID of the server's long-header replies (latin1). */
  readonly clientScid: string | undefined;
  readonly cids: string[];
  /** Client addresses pinned to it. */
  addresses: number;
}

/** A client address and the connections seen from it, the latest last (short headers without a known ID go there). */
export interface QuicPin {
  member: QuicMember;
  seen: number;
  readonly conns: QuicConn[];
}

/**
 * The pins of one shared UDP address (quic-demux.ts): client addresses to their connections, and
 * connection IDs to connections. Bookkeeping only: no timers, no sockets, no events.
 */
export class QuicConnTable {
  readonly pins = new Map<ClientKey, QuicPin>();
  readonly #byCid = new Map<string, QuicConn>();
  /** The lengths of the IDs in #byCid, with how many of each: a short header does not say its DCID's length. */
  readonly #lengths = new Map<number, number>();

  get size(): number {
    return this.pins.size;
  }

  /** A new connection from `key` (a new pin, or one more connection on a pinned address). */
  add(key: ClientKey, member: QuicMember, now: number, dcid?: Buffer, scid?: Buffer): QuicConn {
    const conn: QuicConn = { member, clientScid: scid?.toString('latin1'), cids: [], addresses: 0 };
    if (dcid !== undefined && dcid.length > 0) this.#addCid(conn, dcid.toString('latin1'));
    this.attach(key, conn, now);
    return conn;
  }

  /** Pins `key` to `conn` too (a connection seen from a new address). */
  attach(key: ClientKey, conn: QuicConn, now: number): void {
    let pin = this.pins.get(key);
    if (pin === undefined) this.pins.set(key, (pin = { member: conn.member, seen: now, conns: [] }));
    if (!pin.conns.includes(conn)) {
      if (pin.conns.length >= MAX_CONNS_PER_ADDRESS) {
        const oldest = pin.conns.shift()!;
        if (--oldest.addresses === 0) this.#drop(oldest);
      }
      pin.conns.push(conn);
      conn.addresses++;
    }
    pin.member = conn.member;
    pin.seen = now;
  }

  /** The connection a connection ID belongs to. */
  byCid(cid: Buffer): QuicConn | undefined {
    return cid.length === 0 ? undefined : this.#byCid.get(cid.toString('latin1'));
  }

  /**
   * A long header the server sent to `key`: its Source Connection ID is one of the connection's
   * IDs from now on (the client's next packets carry it). The connection is the one whose client
   * SCID is the reply's DCID, else the address's only one.
   */
  learn(key: ClientKey, dcid: Buffer, scid: Buffer): void {
    const pin = this.pins.get(key);
    if (pin === undefined || scid.length === 0) return;
    const d = dcid.toString('latin1');
    const conn = pin.conns.find((c) => c.clientScid === d) ?? (pin.conns.length === 1 ? pin.conns[0] : undefined);
    if (conn === undefined) return;
    const s = scid.toString('latin1');
    if (conn.cids.includes(s) || conn.cids.length >= MAX_CIDS_PER_CONN) return;
    this.#addCid(conn, s);
  }

  /** The connection of a short header from `pin`: by a known ID at the start of `dgram` (byte 1 on), else the latest. */
  shortHeader(pin: QuicPin, dgram: Buffer): QuicMember {
    for (let i = pin.conns.length - 1; i >= 0; i--) {
      const c = pin.conns[i]!;
      for (const cid of c.cids) if (startsWith(dgram, 1, cid)) return c.member;
    }
    return pin.member;
  }

  /** The connection of a short header from an address never pinned: the known ID its DCID starts with (a connection moved). */
  byShortHeader(dgram: Buffer): QuicConn | undefined {
    for (const len of this.#lengths.keys()) {
      if (dgram.length < 1 + len) continue;
      const conn = this.#byCid.get(dgram.toString('latin1', 1, 1 + len));
      if (conn !== undefined) return conn;
    }
    return undefined;
  }

  /** Forgets the address (idle); a connection no address holds any more is forgotten with its IDs. */
  unpin(key: ClientKey): void {
    const pin = this.pins.get(key);
    if (pin === undefined) return;
    this.pins.delete(key);
    for (const c of pin.conns) if (--c.addresses === 0) this.#drop(c);
  }

  /** Forgets every connection of `member` (it left): their addresses are routed anew. */
  forget(member: QuicMember): void {
    for (const [key, pin] of this.pins) {
      if (!pin.conns.some((c) => c.member === member)) continue;
      for (const c of pin.conns) if (c.member === member) this.#drop(c);
      const rest = pin.conns.filter((c) => c.member !== member);
      if (rest.length === 0) {
        this.pins.delete(key);
        continue;
      }
      pin.conns.length = 0;
      pin.conns.push(...rest);
      pin.member = rest[rest.length - 1]!.member;
    }
  }

  clear(): void {
    this.pins.clear();
    this.#byCid.clear();
    this.#lengths.clear();
  }

  #addCid(conn: QuicConn, cid: string): void {
    conn.cids.push(cid);
    const was = this.#byCid.get(cid);
    if (was !== undefined && was !== conn) was.cids.splice(was.cids.indexOf(cid), 1);
    else if (was === undefined) this.#lengths.set(cid.length, (this.#lengths.get(cid.length) ?? 0) + 1);
    this.#byCid.set(cid, conn);
  }

  #drop(conn: QuicConn): void {
    for (const cid of conn.cids) {
      if (this.#byCid.get(cid) !== conn) continue;
      this.#byCid.delete(cid);
      const n = this.#lengths.get(cid.length)! - 1;
      if (n === 0) this.#lengths.delete(cid.length);
      else this.#lengths.set(cid.length, n);
    }
  }
}

function startsWith(buf: Buffer, at: number, latin1: string): boolean {
  if (buf.length < at + latin1.length) return false;
  for (let i = 0; i < latin1.length; i++) if (buf[at + i] !== latin1.charCodeAt(i)) return false;
  return true;
}

import type { Endpoint, HostPort } from '../../core/address.js';
import type { Clock, Timer } from '../../core/clock.js';
import { SluiceError } from '../../core/errors.js';
import type { DropReason } from '../../core/reasons.js';
import type { DatagramChannel, DatagramDialer, DatagramReceiver, OpenOptions } from '../dialer.js';
import type { UpstreamPool } from './pool.js';
import type { Movable, PoolMember } from './pool-member.js';

/**
 * A route's DatagramDialer over a pool: one member per session, picked at open. The channel it
 * returns wraps the member's own; when the member goes down (failover `move`), the session's
 * channel is closed at once (nothing more goes to that member) and a channel to another member
 * replaces it: a reference swap, the session never sees it. Datagrams sent during the swap are
 * dropped (UDP: the client's retransmission or the next datagram carries on).
 *
 * Passive health: an ICMP error on a member's channel, and a session that sent at least
 * `silentDatagrams` with no reply for `silentMs` (looked at by a sweep, never per datagram),
 * eject the member.
 */
export class PoolDatagramDialer implements DatagramDialer {
  readonly #channels = new Set<PoolChannel>();
  #sweep: Timer | undefined;

  constructor(
    readonly pool: UpstreamPool,
    private readonly clock: Clock,
  ) {
    this.#arm();
  }

  async open(_target: HostPort, receiver: DatagramReceiver, opts: OpenOptions): Promise<DatagramChannel> {
    const ch = new PoolChannel(this, receiver, opts);
    await ch.connect(undefined);
    this.#channels.add(ch);
    return ch;
  }

  /** Ends the silence sweep. Live channels stay their sessions'. */
  close(): void {
    this.#sweep?.cancel();
    this.#sweep = undefined;
  }

  /** The pool's settings changed (a reload): the sweep follows `silentMs`. */
  settingsChanged(): void {
    this.#sweep?.cancel();
    this.#arm();
  }

  forget(ch: PoolChannel): void {
    this.#channels.delete(ch);
  }

  #arm(): void {
    const p = this.pool.settings.passive;
    if (p.silentDatagrams <= 0) return;
    this.#sweep = this.clock.setInterval(() => this.#look(), Math.max(50, Math.floor(p.silentMs / 2)));
  }

  /** A channel silent since the previous look and for `silentMs` with enough datagrams sent: its member is suspect. */
  #look(): void {
    const p = this.pool.settings.passive;
    const now = this.clock.now();
    for (const ch of this.#channels) {
      if (ch.sentSinceReply < p.silentDatagrams) {
        ch.silentSince = -1;
        continue;
      }
      if (ch.silentSince < 0) ch.silentSince = now - Math.floor(p.silentMs / 2);
      else if (now - ch.silentSince >= p.silentMs) {
        ch.silentSince = -1;
        ch.sentSinceReply = 0;
        const m = ch.member;
        if (m) this.pool.failed(m, 'silent');
      }
    }
  }
}

/** One session's channel to whichever member serves it now. */
class PoolChannel implements DatagramChannel, DatagramReceiver, Movable {
  #inner: DatagramChannel | null = null;
  #member: PoolMember | undefined;
  #closed = false;
  #moving = false;
  /** Datagrams sent since the last reply (read by the silence sweep). */
  sentSinceReply = 0;
  silentSince = -1;
  #bytesOut = 0;
  #bytesIn = 0;
  #remote: Endpoint = { address: '0.0.0.0', port: 0, family: 4 };

  constructor(
    private readonly owner: PoolDatagramDialer,
    private readonly receiver: DatagramReceiver,
    private readonly opts: OpenOptions,
  ) {}

  get remote(): Endpoint {
    return this.#remote;
  }

  get bytesOut(): number {
    return this.#bytesOut;
  }

  get bytesIn(): number {
    return this.#bytesIn;
  }

  get member(): PoolMember | undefined {
    return this.#member;
  }

  /** Opens a channel on a member (not `not`), trying the next one when an open fails. */
  async connect(not: PoolMember | undefined): Promise<void> {
    const pool = this.owner.pool;
    let tried = not ? new Set<PoolMember>([not]) : undefined;
    let last: unknown;
    for (;;) {
      let m: PoolMember;
      try {
        m = pool.pick(this.opts.client, tried);
      } catch (err) {
        throw last ?? err;
      }
      const open = m.spec.ways.open;
      try {
        if (!open) throw new SluiceError('SLUICE_ERR_DIAL_FAILED', `pool member ${m.spec.label} takes no UDP sessions`);
        const inner = await open(this, this.opts);
        if (this.#closed) {
          inner.close();
          pool.release(m);
          return;
        }
        this.#inner = inner;
        this.#member = m;
        this.#remote = inner.remote;
        m.sessions++;
        m.channels.add(this);
        return;
      } catch (err) {
        pool.release(m);
        if (this.opts.signal.aborted) throw err;
        (tried ??= new Set()).add(m);
        last = err;
        pool.failed(m, 'dial-failed');
      }
    }
  }

  send(buf: Buffer, prefix: Buffer | null): void {
    const inner = this.#inner;
    if (inner === null) return;
    this.sentSinceReply++;
    this.#bytesOut += buf.length;
    inner.send(buf, prefix);
  }

  onUpstreamDatagram(buf: Buffer): void {
    this.sentSinceReply = 0;
    this.#bytesIn += buf.length;
    this.receiver.onUpstreamDatagram(buf);
  }

  /** ICMP unreachable or a socket error: the member is ejected; under `move` the pool moves this session with the rest. */
  onUpstreamError(err: Error): void {
    const m = this.#member;
    if (!m || this.#closed) return;
    this.owner.pool.failed(m, 'icmp-error');
    if (this.#member !== m) return; // moved by the pool
    if (this.owner.pool.settings.failover === 'move') this.move();
    else this.receiver.onUpstreamError(err);
  }

  onDatagramError(err: Error): void {
    this.receiver.onDatagramError?.(err);
  }

  /** Leaves the current member at once and goes on with another; no healthy one left ends the session. */
  move(): void {
    if (this.#closed || this.#moving) return;
    this.#moving = true;
    const from = this.#leave();
    this.connect(from).then(
      () => {
        this.#moving = false;
      },
      (err: Error) => {
        this.#moving = false;
        if (!this.#closed) this.receiver.onUpstreamError(err);
      },
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#leave();
    this.owner.forget(this);
  }

  drops(): Partial<Record<DropReason, number>> | undefined {
    return this.#inner?.drops?.();
  }

  /** Closes the member's channel and settles its counts; returns the member left. */
  #leave(): PoolMember | undefined {
    const m = this.#member;
    const inner = this.#inner;
    this.#inner = null;
    this.#member = undefined;
    inner?.close();
    if (m) {
      m.channels.delete(this);
      m.bytesFromClient += this.#bytesOut;
      m.bytesToClient += this.#bytesIn;
      this.owner.pool.release(m);
    }
    this.#bytesOut = 0;
    this.#bytesIn = 0;
    this.sentSinceReply = 0;
    this.silentSince = -1;
    return m;
  }
}

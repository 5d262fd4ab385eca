import { canonicalIp } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { budgetAllows, budgetReceived, DEFAULT_REPLY_BUDGET, type ReplyBudget } from '../core/reply-budget.js';
import { UnverifiedReplyGuard } from '../core/unverified-reply-guard.js';
import { MAX_PAYLOAD_BYTES, STATS_NONCE, TAG_BYTES } from '../protocol/udpexposer/constants.js';
import { hasTokenPrefix } from '../protocol/udpexposer/frame.js';
import type { UdpexposerKey } from '../protocol/udpexposer/key.js';
import { UdpexposerError } from '../protocol/udpexposer/errors.js';
import { encodeReplyToken, verifyRequestToken } from '../protocol/udpexposer/token.js';
import { ConnecteeTable, type Connectee } from './connectee-table.js';
import { ipv4Text, peerKey } from './endpoint-key.js';
import { peerPolicy, type PeerPolicy } from './peer-policy.js';
import { newServerCounters, type UdpexposerServerCounters } from './counters.js';
import { RetryCookies } from './retry-cookie.js';
import { ServerOffloads, type ConnecteeOffloader } from './server-offloads.js';
import type { DatagramSender, PeerAddress, UdpexposerEvent } from './types.js';

/**
 * The udpexposer server role, without a socket: every datagram the shared socket receives goes
 * to `handleDatagram`, and everything it sends goes out through the injected sender. Wire
 * behaviour follows udpexposer 0.3.0 (protocols.md §1.3); where it has known flaws this class
 * keeps the wire and changes the behaviour (docs/udpexposer.md, "Flaws and what Sluice does"):
 *
 *  - one coherent connectee table instead of two disagreeing LRUs (connectee-table.ts);
 *  - password mode: only a signed echo of a fresh, address-bound, single-use Retry moves the
 *    client address; empty or unsigned datagrams never do (SPF-2). Without a password an empty
 *    datagram re-points the client, as the protocol defines: that mode is unauthenticated;
 *  - amplification: what the server originates (Retry, Registered) is at most 3x the datagram
 *    that asked for it (core/unverified-reply-guard.ts), with no way to unlock more; stats
 *    requests are never answered (a constant, replayable token asking for 184 bytes). What the
 *    client relays to a connectee is held to the connectee's reply budget (core/reply-budget.ts):
 *    the wire has no cookie, so no connectee ever proves it receives, and no flag pretends it does;
 *  - loopback, private and link-local sources are neither answered nor forwarded unless the peer
 *    policy allows them; metadata and unusable ones never are (peer-policy.ts);
 *  - payloads longer than 2046 bytes are dropped and counted, not cut short;
 *  - password mode: a well-formed token with a wrong signature is dropped, not forwarded as data.
 *
 * Not re-entrant: call handleDatagram from one event loop turn at a time (the socket does).
 */

/** Least time between two `bad-signature` events. */
const BAD_SIGNATURE_EVENT_MS = 60_000;

export interface UdpexposerServerOptions {
  /** udpexposer's `-n`: most connectees at once (1-65535). */
  readonly maxClients: number;
  /** Password mode when present (`-P`). */
  readonly key?: UdpexposerKey;
  /** A full table evicts its least recently heard-from connectee only after this long silent. Default 30 s. */
  readonly evictIdleAfterMs?: number;
  /**
   * What the client may relay to each connectee: at most `ratio` x the bytes received from it
   * over the window. Default DEFAULT_REPLY_BUDGET (64x over 10 s); 'off' lifts it.
   */
  readonly replyBudget?: ReplyBudget | 'off';
  /** Largest payload forwarded either way. Default 2046, what a real udpexposer peer can receive. */
  readonly maxPayloadBytes?: number;
  /** Which sources are served. Default: public only (peer-policy.ts). */
  readonly peerPolicy?: PeerPolicy;
}

interface ClientPeer extends PeerAddress {
  /** Key as peerKey() gives it, for comparing sources without allocating. */
  readonly key: number | string;
  /** As the socket reported it: where frames go. */
  readonly replyAddress: string;
  readonly authenticated: boolean;
}

export interface ServerCoreDeps {
  readonly clock: Clock;
  readonly send: DatagramSender;
  readonly onEvent?: (e: UdpexposerEvent) => void;
  readonly cookieSecret?: Buffer;
  /** Optional: hands an established connectee's channel to the datapath's batch (server.ts, native datapath). */
  readonly offload?: ConnecteeOffloader;
}

export class UdpexposerServerCore {
  readonly counters: UdpexposerServerCounters = newServerCounters();
  readonly table: ConnecteeTable;
  readonly #key: UdpexposerKey | undefined;
  readonly #cookies: RetryCookies | undefined;
  readonly #registered: Buffer | undefined;
  readonly #guard = new UnverifiedReplyGuard();
  readonly #budget: ReplyBudget | undefined;
  readonly #maxPayload: number;
  readonly #policy: PeerPolicy;
  readonly #deps: ServerCoreDeps;
  #client: ClientPeer | undefined;
  /** Connectees whose channel the batch carries; null without an offloader. */
  readonly offloads: ServerOffloads | null;
  #lastBadSignatureAt: number | undefined;

  constructor(opts: UdpexposerServerOptions, deps: ServerCoreDeps) {
    this.#deps = deps;
    this.#key = opts.key;
    this.#budget = opts.replyBudget === 'off' ? undefined : (opts.replyBudget ?? DEFAULT_REPLY_BUDGET);
    if (this.#budget && !(this.#budget.ratio >= 1 && this.#budget.windowMs > 0)) {
      throw new UdpexposerError(`replyBudget needs ratio >= 1 and windowMs > 0, got ${JSON.stringify(this.#budget)}`);
    }
    this.counters.unverifiedReplies = this.#guard.counters;
    this.#maxPayload = opts.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    this.#policy = opts.peerPolicy ?? peerPolicy({ allowPrivate: false, allowLoopback: false });
    this.table = new ConnecteeTable({ capacity: opts.maxClients, evictIdleAfterMs: opts.evictIdleAfterMs ?? 30_000 }, deps.clock);
    if (opts.key) {
      this.#cookies = new RetryCookies(deps.clock, deps.cookieSecret);
      this.#registered = encodeReplyToken({ kind: 'registered' }, opts.key);
    }
    this.offloads = deps.offload
      ? new ServerOffloads({ offload: deps.offload, clock: deps.clock, counters: this.counters, table: this.table, budget: this.#budget, maxPayload: this.#maxPayload, password: opts.key !== undefined })
      : null;
  }

  /** The registered client, if any. */
  get client(): (PeerAddress & { readonly authenticated: boolean }) | undefined {
    const c = this.#client;
    return c && { address: c.address, port: c.port, authenticated: c.authenticated };
  }

  /** Handles one datagram from `address:port` (as the socket reported them). Never throws. */
  handleDatagram(buf: Buffer, address: string, port: number): void {
    const key = peerKey(address, port);
    if (key === undefined || !this.#policy(address, port)) {
      this.counters.dropped['peer-denied']++;
      return;
    }
    const fromClient = this.#client !== undefined && this.#client.key === key;
    if (this.#key !== undefined) {
      if (hasTokenPrefix(buf) && this.#token(buf, key, address, port, fromClient)) return;
    } else if (buf.length === 0) {
      this.counters.keepalives++;
      if (!fromClient) this.#setClient(key, address, port, false);
      return;
    }
    if (fromClient) this.#fromClient(buf);
    else this.#fromConnectee(buf, key, address, port);
  }

  /**
   * The same for a source the socket reported as an IPv4 number (the native datapath does): a
   * datagram from the client or a known connectee is relayed without making the address text. A
   * known source passed the peer policy when it was admitted, and the policy does not change.
   * Keepalives, tokens and new sources take the full path.
   */
  handleDatagramV4(buf: Buffer, ipv4: number, port: number): void {
    const client = this.#client;
    if (client !== undefined && (this.#key !== undefined ? !hasTokenPrefix(buf) : buf.length !== 0)) {
      const key = ipv4 * 65536 + port;
      if (client.key === key) return this.#fromClient(buf);
      if (buf.length <= this.#maxPayload) {
        const c = this.table.heard(key);
        if (c !== undefined) return this.#relay(buf, c, client);
      }
    }
    this.handleDatagram(buf, ipv4Text(ipv4), port);
  }

  /** Returns true when the token was consumed; false to treat the datagram as data (udpexposer's fall-through). */
  #token(buf: Buffer, key: number | string, address: string, port: number, fromClient: boolean): boolean {
    this.counters.tokens++;
    const v = verifyRequestToken(buf, this.#key!);
    if (!v.ok) {
      this.counters.invalidTokens++;
      if (v.reason !== 'bad-signature') return false;
      // A well-formed token under another key is a client with the wrong -P, never connectee data:
      // forwarded, it would reach the registered client, and the two clients' services would echo
      // each other's frames in a loop.
      this.#badSignature(address, port);
      return true;
    }
    const { nonce } = v.value;
    if (nonce === STATS_NONCE) {
      this.counters.statsRequests++;
      return true;
    }
    if (fromClient) {
      // udpexposer's "lax mode": any valid token from the current client is answered. The address does not change.
      if (this.#reply(this.#registered!, buf.length, port, address)) this.counters.registeredSent++;
      return true;
    }
    const canon = canonicalIp(address)!.address;
    if (nonce !== null) {
      const check = this.#cookies!.check(nonce, canon, port);
      if (check === 'ok') {
        this.#setClient(key, address, port, true);
        if (this.#reply(this.#registered!, buf.length, port, address)) this.counters.registeredSent++;
        return true;
      }
      this.counters.echoesRefused[check]++;
    }
    const retry = encodeReplyToken({ kind: 'retry', value: this.#cookies!.issue(canon, port) }, this.#key!);
    if (this.#reply(retry, buf.length, port, address)) this.counters.retriesSent++;
    return true;
  }

  /** Tells the operator, at most once a minute, that a client signs with another password. */
  #badSignature(address: string, port: number): void {
    const now = this.#deps.clock.now();
    if (this.#lastBadSignatureAt !== undefined && now - this.#lastBadSignatureAt < BAD_SIGNATURE_EVENT_MS) return;
    this.#lastBadSignatureAt = now;
    this.#deps.onEvent?.({ type: 'bad-signature', peer: { address: canonicalIp(address)!.address, port } });
  }

  /** A reply generated by the server itself to an unverified source: within 3x of the request, or not sent. */
  #reply(bytes: Buffer, received: number, port: number, address: string): boolean {
    if (!this.#guard.allows(bytes.length, received)) {
      this.counters.dropped.amplification++;
      return false;
    }
    this.#deps.send(bytes, null, port, address);
    return true;
  }

  #setClient(key: number | string, address: string, port: number, authenticated: boolean): void {
    const previous = this.#client;
    // Every offloaded channel names the old client.
    this.offloads?.removeAll();
    const canon = canonicalIp(address)!.address;
    this.#client = { key, address: canon, port, replyAddress: address, authenticated };
    this.counters.clientAddressChanges++;
    this.#deps.onEvent?.({
      type: 'client-address',
      address: { address: canon, port },
      previous: previous && { address: previous.address, port: previous.port },
      authenticated,
    });
  }

  /** A frame from the client: `tag (u16 BE) || payload`, read in place (frame.ts's layout). */
  #fromClient(buf: Buffer): void {
    if (buf.length < TAG_BYTES) {
      this.counters.dropped['short-from-client']++;
      return;
    }
    const c = this.table.byTag((buf[0]! << 8) | buf[1]!);
    if (c === undefined) {
      this.counters.dropped['unknown-tag']++;
      return;
    }
    const len = buf.length - TAG_BYTES;
    if (len > this.#maxPayload) {
      this.counters.dropped['too-big']++;
      return;
    }
    if (c.offload !== null) this.offloads!.fold(c);
    this.counters.fromClient.datagrams++;
    this.counters.fromClient.bytes += len;
    const b = this.#budget;
    if (b !== undefined && !budgetAllows(c, len, b.ratio, Math.floor(this.#deps.clock.now() / b.windowMs))) {
      this.counters.dropped['reply-budget']++;
      return;
    }
    c.bytesOut += len;
    c.datagramsOut++;
    this.counters.toConnectees.datagrams++;
    this.counters.toConnectees.bytes += len;
    this.#deps.send(buf.subarray(TAG_BYTES), null, c.port, c.address);
    this.#sentInJs(c, this.#client!);
  }

  #fromConnectee(buf: Buffer, key: number | string, address: string, port: number): void {
    const client = this.#client;
    if (client === undefined) {
      this.counters.dropped['no-client']++;
      return;
    }
    if (buf.length > this.#maxPayload) {
      this.counters.dropped['too-big']++;
      return;
    }
    const r = this.table.fromConnectee(key, address, port);
    if (r.kind === 'full') {
      this.counters.dropped['table-full']++;
      return;
    }
    const c: Connectee = r.connectee;
    if (r.kind === 'added') this.#added(c, r.evicted);
    this.#relay(buf, c, client);
  }

  /** Counts a connectee's datagram and sends it to the client as a frame under its tag. */
  #relay(buf: Buffer, c: Connectee, client: ClientPeer): void {
    const b = this.#budget;
    if (b !== undefined) budgetReceived(c, buf.length, Math.floor(c.lastHeardMs / b.windowMs));
    c.bytesIn += buf.length;
    c.datagramsIn++;
    this.counters.fromConnectees.datagrams++;
    this.counters.fromConnectees.bytes += buf.length;
    this.counters.toClient.datagrams++;
    this.counters.toClient.bytes += buf.length + 2;
    this.#deps.send(buf, c.tagBytes, client.port, client.replyAddress);
    this.#sentInJs(c, client);
  }

  /** After JavaScript relayed a datagram of `c`: hand its channel to the batch, or bring the batch's reply allowance up to what JavaScript counted. */
  #sentInJs(c: Connectee, client: ClientPeer): void {
    const o = this.offloads;
    if (o === null) return;
    if (c.offload === null) o.consider(c, client);
    else o.refresh(c);
  }

  #added(c: Connectee, evicted: Connectee | undefined): void {
    this.counters.connecteesAdded++;
    if (evicted) {
      this.counters.connecteesEvicted++;
      this.offloads?.remove(evicted);
    }
    if (!this.#deps.onEvent) return;
    const peer = (x: Connectee) => ({ address: canonicalIp(x.address)!.address, port: x.port });
    this.#deps.onEvent({ type: 'connectee-added', tag: c.tag, peer: peer(c), evicted: evicted && { tag: evicted.tag, peer: peer(evicted) } });
  }
}

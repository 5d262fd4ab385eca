import { canonicalIp, type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import { TurnClient, type TurnServerConfig } from '../turn/turn-client.js';
import type { DatagramIngress, IcePolicy } from './agent-options.js';
import { relayBase, socketBase, srflxCandidate, type IceSocket } from './bases.js';
import { addressKey, foundationOf, type IceCandidate } from './candidate.js';
import type { IceBase } from './checklist.js';
import { queryServerReflexive } from './gathering.js';
import type { RelayTransport } from '../turn/relay-transport.js';
import type { StunPeer, StunRetransmitTiming } from '../turn/stun-transaction.js';

/**
 * Local candidates (RFC 8445 §5.1): the bases the agent sends from, and what it learns about
 * them. Host candidates come from the sockets, server-reflexive ones from STUN servers through
 * those sockets, relayed ones from TURN allocations made through them or from relays handed in.
 * Gathering never throws: failures are collected for 'gathering-complete'.
 */

export interface GathererHost {
  /** A new local candidate; `isBase` when it is the base's own (host, relay) and so gets paired. */
  onCandidate(base: IceBase, candidate: IceCandidate, isBase: boolean): void;
  /** Everything started so far has ended. */
  onComplete(errors: readonly Error[]): void;
  /** A datagram for the agent (not a TURN server's); true when used. */
  receive(base: IceBase, buf: Buffer, from: StunPeer): boolean;
  /** A relay base's allocation is gone. */
  baseLost(base: IceBase, err: Error | undefined): void;
}

export interface GathererOptions {
  readonly clock: Clock;
  /** The agent's lifetime; TURN clients and transaction tables end with it. */
  readonly signal: AbortSignal;
  readonly stunServers: readonly StunPeer[];
  readonly turnServers: readonly TurnServerConfig[];
  readonly policy: IcePolicy;
  readonly timing: StunRetransmitTiming;
}

interface SocketEntry {
  readonly base: IceBase;
  readonly turns: TurnClient[];
}

export class Gatherer {
  readonly #o: GathererOptions;
  readonly #host: GathererHost;
  readonly #bases: IceBase[] = [];
  readonly #sockets: SocketEntry[] = [];
  readonly #relays: RelayTransport[] = [];
  readonly #owned: TurnClient[] = [];
  readonly #local = new Map<string, { candidate: IceCandidate; base: IceBase }>();
  readonly #errors: Error[] = [];
  #started = false;
  #pending = 0;

  constructor(options: GathererOptions, host: GathererHost) {
    this.#o = options;
    this.#host = host;
  }

  get bases(): readonly IceBase[] {
    return this.#bases;
  }

  get started(): boolean {
    return this.#started;
  }

  /** Started and nothing left running. */
  get done(): boolean {
    return this.#started && this.#pending === 0;
  }

  get errors(): readonly Error[] {
    return this.#errors;
  }

  /** Every local candidate, peer-reflexive ones included. */
  candidates(): IceCandidate[] {
    return [...this.#local.values()].map((l) => l.candidate);
  }

  /** Whether `base`'s own candidate has been gathered (only then is it paired). */
  has(base: IceBase): boolean {
    return this.#local.get(addressKey(base.candidate.address, base.candidate.port))?.base === base;
  }

  addSocket(socket: IceSocket): DatagramIngress {
    const ip = canonicalIp(socket.local.address);
    if (!ip || ip.address === '0.0.0.0' || ip.address === '::') {
      throw new SluiceError('SLUICE_ERR_ADDRESS_INVALID', `an ICE socket needs a host address, not "${socket.local.address}"`);
    }
    const local: Endpoint = { ...socket.local, address: ip.address, family: ip.family };
    const pref = 65535 - this.#sockets.length;
    const base = socketBase(this.#bases.length, { local, send: (b, p, a) => socket.send(b, p, a) }, pref, this.#o.clock, this.#o.signal);
    const entry: SocketEntry = { base, turns: [] };
    this.#bases.push(base);
    this.#sockets.push(entry);
    if (this.#started) this.#gatherSocket(entry);
    return (buf, from) => {
      for (const turn of entry.turns) if (turn.handleDatagram(buf, from)) return true;
      return this.#host.receive(base, buf, from);
    };
  }

  addRelay(relay: RelayTransport): void {
    this.#relays.push(relay);
    if (this.#started) this.#track(this.#gatherRelay(relay, 'external'));
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#pending++;
    for (const s of this.#sockets) this.#gatherSocket(s);
    for (const r of this.#relays) this.#track(this.#gatherRelay(r, 'external'));
    this.#settled();
  }

  /**
   * The local candidate the peer saw in a check from `base` (RFC 8445 §7.2.5.3.1): a known one of
   * that base, or a new peer-reflexive one with the priority the check carried. Never signalled.
   */
  localFor(base: IceBase, mapped: Endpoint, priority: number): IceCandidate {
    const key = addressKey(mapped.address, mapped.port);
    const known = this.#local.get(key);
    if (known && known.base === base) return known.candidate;
    const c: IceCandidate = {
      foundation: foundationOf('prflx', base.address.address), component: 1, transport: 'udp', priority,
      address: mapped.address, port: mapped.port, family: mapped.family, type: 'prflx',
      related: { address: base.address.address, port: base.address.port },
    };
    if (!known) this.#local.set(key, { candidate: c, base });
    return c;
  }

  /** A restart forgets what the old session's checks taught. */
  forgetPeerReflexive(): void {
    for (const [k, l] of this.#local) if (l.candidate.type === 'prflx') this.#local.delete(k);
  }

  /** Deletes the TURN allocations the gatherer made (through the sockets, which must still be open). */
  async closeOwned(): Promise<void> {
    await Promise.allSettled(this.#owned.map((t) => t.close()));
  }

  #gatherSocket(s: SocketEntry): void {
    const { base } = s;
    const all = this.#o.policy !== 'relay';
    const pref = (base.candidate.priority >> 8) & 0xffff;
    if (all) this.#add(base, base.candidate);
    if (all) {
      for (const server of this.#o.stunServers) {
        this.#track(queryServerReflexive(base, server, this.#o.signal, this.#o.timing).then((mapped) => {
          this.#add(base, srflxCandidate(base, mapped, server.address, pref));
        }));
      }
    }
    for (const config of this.#o.turnServers) {
      const turn = new TurnClient(config, { clock: this.#o.clock, send: (b, p, a) => base.send(b, { address: a, port: p }), signal: this.#o.signal });
      s.turns.push(turn);
      this.#owned.push(turn);
      this.#track(this.#gatherRelay(turn, config.server.address, s));
    }
  }

  async #gatherRelay(relay: RelayTransport, server: string, via?: SocketEntry): Promise<void> {
    const alloc = await relay.allocate(this.#o.signal);
    if (this.#o.signal.aborted) return;
    const pref = 65535 - this.#bases.filter((b) => b.kind === 'relay').length;
    const base = relayBase(this.#bases.length, relay, alloc, server, pref, this.#o.clock, this.#o.signal);
    this.#bases.push(base);
    relay.setReceiver({ onRelayDatagram: (buf, from) => void this.#host.receive(base, buf, from), onRelayClosed: (err) => this.#host.baseLost(base, err) });
    this.#add(base, base.candidate);
    // The relay saw this side's NAT mapping: a srflx candidate too (redundant if a STUN server found the same).
    if (via && alloc.mapped && this.#o.policy !== 'relay') {
      this.#add(via.base, srflxCandidate(via.base, alloc.mapped, server, (via.base.candidate.priority >> 8) & 0xffff));
    }
  }

  #add(base: IceBase, c: IceCandidate): void {
    const key = addressKey(c.address, c.port);
    if (this.#local.has(key) || this.#o.signal.aborted) return; // redundant (RFC 8445 §5.1.3): srflx = host without a NAT
    this.#local.set(key, { candidate: c, base });
    this.#host.onCandidate(base, c, c === base.candidate);
  }

  #track(task: Promise<void>): void {
    this.#pending++;
    task.catch((err: unknown) => void this.#errors.push(err as Error)).finally(() => this.#settled());
  }

  #settled(): void {
    if (--this.#pending > 0 || this.#o.signal.aborted) return;
    this.#host.onComplete([...this.#errors]);
  }
}

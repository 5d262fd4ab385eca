import { randomBytes, randomInt } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { CandidateClass } from '../config/expose-config.js';
import { IceAgent, type IceTiming } from '../ice/agent.js';
import type { IceAgentState } from '../ice/agent-state.js';
import type { IceSocket } from '../ice/bases.js';
import { formatCandidate, parseCandidate, type IceCandidate } from '../ice/candidate.js';
import type { StunPeer } from '../turn/stun-transaction.js';
import type { TurnServerConfig } from '../turn/turn-client.js';
import { classifyPeer } from '../udpexposer/peer-policy.js';
import type { OpenerOptions, SealerOptions } from '../protocol/tunnel/index.js';
import { SocketOpener, SocketSealer } from '../datapath/socket-keys.js';
import { OffloadGroup, type TunnelEnd } from '../datapath/offload.js';
import { ICE_DATA_PREFIX } from '../ice/channel.js';
import type { DiagnosisInput } from './peer-diagnosis.js';
import type { PeerSignalBody } from './peer-signal.js';

export interface AttemptOptions {
  readonly id: string;
  readonly controlling: boolean;
  readonly clock: Clock;
  readonly socket: IceSocket;
  readonly stunServers: readonly StunPeer[];
  readonly turnServers: readonly TurnServerConfig[];
  readonly icePolicy: 'all' | 'relay';
  readonly iceTiming?: Partial<IceTiming>;
  /** `agent.peerCandidates`: the address classes checks and data may go to. */
  readonly candidateClasses: readonly CandidateClass[];
  /** Makes the opener of the direct path's key (in the native batch where the datapath is native). */
  readonly opener?: (opts: OpenerOptions) => SocketOpener;
  /** Makes the sealer of the peer's key (sealing in the native batch, from the gateway socket, where the datapath is native). */
  readonly sealer?: (opts: SealerOptions) => SocketSealer;
}

/** One flow of a direct path as the native batch carries it (PeerAttempt.offloadEnd). */
export interface DirectFlowEnd {
  /** The tag the peer reads (its connectee tag, or ours with the peer bit set). */
  readonly tag: number;
  /** The tag the peer's datagrams of this flow carry. */
  readonly tagIn: number;
  grant(want: number): number;
  /** The send budget's pools in the batch (datapath/offload-pool.ts), when the flow has a budget: no JavaScript call per credit chunk. */
  readonly pools?: TunnelEnd['pools'];
  charge?(toPeer: number): void;
  /** What the flow has banked of its share (FairSlot.bank), carried into the pool when it joins. */
  bank?(): number;
  dropped?(agentBudget: number, sessionShare: number, stale: number): void;
  forwarded(toPeer: number, fromPeer: number): void;
  /** False once the flow's own side changed (re-tag, closed, another path chosen). */
  valid(): boolean;
  readonly groups: readonly OffloadGroup[];
}

/** What an attempt reports to its link. */
export interface AttemptEvents {
  /** A SIGNAL body to send to the peer (candidates, end-of-candidates). */
  signal(body: PeerSignalBody): void;
  state(state: IceAgentState): void;
  /** An opened data datagram: the tag as the peer sealed it. */
  data(tag: number, payload: Buffer): void;
  /** The peer acked one of our keepalives: the direct path works both ways. */
  ack(): void;
  /** A datagram on the ICE channel that did not open (forged, replayed, another attempt's). */
  rejected(): void;
}

/**
 * One ICE attempt toward a peer (docs/connect.md): an ICE agent on the agent's gateway socket and
 * the keys of the direct path. Each side picks a fresh 32-byte key and key id for what it
 * receives and sends them in its offer or answer; the other side seals to them. Direct datagrams
 * are tunnel datagrams (ChaCha20-Poly1305, replay window, docs/tunnel-protocol.md §6) carried by
 * the ICE channel; the controlling side seals in the 'agent-to-gateway' direction, so a datagram
 * reflected to its sender does not open. Remote addresses outside `peerCandidates` are never
 * paired, signalled or peer-reflexive; they are listed in `skipped`.
 */
export class PeerAttempt {
  readonly ice: IceAgent;
  readonly skipped: string[] = [];
  /** Gathering finished and no STUN server failed: a missing srflx candidate then means no NAT. */
  stunAnswered = false;
  readonly #ingress: (buf: Buffer, from: StunPeer) => boolean;
  readonly #key = randomBytes(32);
  readonly #keyId = randomInt(1, 0xffff_ffff);
  readonly #opener: SocketOpener;
  #sealer: SocketSealer | undefined;
  /** Flows forwarded in the native batch over the selected pair: closed on every ICE state change and when the attempt ends. */
  readonly offloads = new OffloadGroup();

  constructor(
    private readonly o: AttemptOptions,
    private readonly events: AttemptEvents,
  ) {
    this.ice = new IceAgent({
      role: o.controlling ? 'controlling' : 'controlled',
      clock: o.clock,
      stunServers: o.stunServers,
      turnServers: o.turnServers,
      policy: o.icePolicy,
      timing: o.iceTiming,
      // Peer-reflexive addresses (learned from checks) pass the same rule as signalled ones.
      remoteAllowed: (address, port) => this.#allowed('prflx', address, port),
    });
    this.#ingress = this.ice.addSocket(o.socket);
    this.#opener = (o.opener ?? ((x) => new SocketOpener(x)))({ key: this.#key, direction: o.controlling ? 'gateway-to-agent' : 'agent-to-gateway', keyId: this.#keyId });
    this.ice.on('candidate', (c: IceCandidate) => events.signal({ kind: 'candidate', attempt: o.id, candidate: formatCandidate(c) }));
    this.ice.on('gathering-complete', (e) => {
      this.stunAnswered = !e.errors.some((err) => err.name === 'StunTimeoutError');
      events.signal({ kind: 'end', attempt: o.id });
    });
    this.ice.on('state', (state) => {
      this.offloads.closeAll();
      events.state(state);
    });
    this.ice.channel.onDatagram((buf) => this.#onDatagram(buf));
  }

  get id(): string {
    return this.o.id;
  }

  /** The peer's answer (or offer) arrived: its credentials and key. */
  get answered(): boolean {
    return this.#sealer !== undefined;
  }

  /** ICE selected a pair and the keys are known: direct datagrams can go. */
  get connected(): boolean {
    return this.#sealer !== undefined && this.ice.state === 'connected';
  }

  /** Our half of the offer or answer. */
  local(): { ufrag: string; pwd: string; keyId: number; key: string } {
    return { ...this.ice.localCredentials, keyId: this.#keyId, key: this.#key.toString('base64') };
  }

  /** The peer's offer or answer. Idempotent. */
  accept(s: { ufrag: string; pwd: string; keyId: number; key: string }): void {
    if (this.#sealer) return;
    const opts: SealerOptions = { key: Buffer.from(s.key, 'base64'), direction: this.o.controlling ? 'agent-to-gateway' : 'gateway-to-agent', peerKeyId: s.keyId };
    this.#sealer = this.o.sealer?.(opts) ?? new SocketSealer(opts, () => undefined);
    this.ice.setRemoteCredentials({ ufrag: s.ufrag, pwd: s.pwd });
  }

  /** One trickled candidate (SDP text), or null for end-of-candidates. */
  remoteCandidate(text: string | null): void {
    if (text === null) {
      this.ice.addRemoteCandidate(null);
      return;
    }
    const c = parseCandidate(text);
    if (typeof c !== 'string' && this.#allowed(c.type, c.address, c.port)) this.ice.addRemoteCandidate(c);
  }

  /** A datagram of the shared socket; true when this attempt's ICE agent took it. */
  ingress(buf: Buffer, from: StunPeer): boolean {
    return this.#ingress(buf, from);
  }

  /** One flow datagram, sealed for the peer. False when it could not go. */
  send(tag: number, payload: Buffer): boolean {
    const sealer = this.#sealer;
    if (!sealer) return false;
    let sealed: Buffer;
    try {
      sealed = sealer.sealData(tag, payload);
    } catch {
      return false;
    }
    return this.ice.channel.send(sealed);
  }

  keepalive(counter: number): void {
    if (this.#sealer) this.ice.channel.send(this.#sealer.sealKeepalive(counter));
  }

  /**
   * The tunnel side of one flow over the selected pair for the native batch (datapath/offload.ts):
   * sealed under this attempt's keys behind ICE's data prefix, from the gateway socket to the
   * peer's selected candidate, and the peer's datagrams from there opened under ours. Null while
   * not connected, and on a relayed pair (a TURN relay frames datagrams its own way). Valid while
   * ICE stays connected on the same remote candidate; any ICE state change closes it at once.
   */
  offloadEnd(flow: DirectFlowEnd): TunnelEnd | null {
    const sealer = this.#sealer;
    const pair = this.ice.selectedPair;
    if (!sealer || !this.connected || !pair || pair.relayed) return null;
    const { address, port } = pair.remote;
    return {
      kind: 'tunnel',
      sealer,
      opener: this.#opener,
      tag: flow.tag,
      tagIn: flow.tagIn,
      frame: ICE_DATA_PREFIX,
      peer: { address, port },
      pinPeer: true,
      grant: (want) => flow.grant(want),
      ...(flow.pools ? { pools: flow.pools, charge: (n: number) => flow.charge?.(n), bank: () => flow.bank?.() ?? 0, dropped: (b: number, s: number, st: number) => flow.dropped?.(b, s, st) } : {}),
      forwarded: (to, from) => flow.forwarded(to, from),
      valid: () => {
        const p = this.connected ? this.ice.selectedPair : undefined;
        return p !== undefined && p.remote.address === address && p.remote.port === port && flow.valid();
      },
      groups: [this.offloads, ...flow.groups],
    };
  }

  /** The ICE part of the diagnosis. */
  snapshot(): Pick<DiagnosisInput, 'ice' | 'skipped' | 'keys' | 'stunAnswered'> {
    const ice = this.ice;
    return {
      ice: { state: ice.state, local: ice.localCandidates, remote: ice.remoteCandidates, pairs: ice.pairs, selected: ice.selectedPair },
      skipped: this.skipped,
      keys: this.answered,
      stunAnswered: this.stunAnswered,
    };
  }

  /** Idempotent; deletes the attempt's TURN allocations in the background. */
  close(): void {
    this.offloads.closeAll();
    this.#sealer?.release();
    this.#opener.release();
    this.ice.removeAllListeners();
    this.ice.channel.close();
    void this.ice.close();
  }

  #allowed(type: string, address: string, port: number): boolean {
    const cls = classifyPeer(address, port);
    if ((this.o.candidateClasses as readonly string[]).includes(cls)) return true;
    const text = `${type} ${address}:${port} (${cls})`;
    if (this.skipped.length < 16 && !this.skipped.includes(text)) this.skipped.push(text);
    return false;
  }

  #onDatagram(buf: Buffer): void {
    const r = this.#opener.open(buf);
    if (!r.ok) return this.events.rejected();
    const d = r.datagram;
    if (d.kind === 'keepalive') {
      if (this.#sealer) this.ice.channel.send(this.#sealer.sealKeepaliveAck(d.counter));
    } else if (d.kind === 'keepalive-ack') {
      this.events.ack();
    } else if (d.kind === 'data') {
      this.events.data(d.tag, d.payload);
    }
  }
}

import { canonicalIp, type Endpoint } from '../core/address.js';
import type { Connectee } from './connectee.js';
import type { RelayedLink } from './peer-flows.js';
import type { OfferTable } from './peer-offers.js';
import type { Fleet } from '../fleet/fleet.js';
import type { Clock, Timer } from '../core/clock.js';

/**
 * What the peer bridge needs of the gateway's fleet (docs/fleet.md, "Agents on a fleet"): this
 * gateway's fleet name, pub/sub on prefixed channels, and where an agent is present now.
 */
export interface FleetBus {
  readonly name: string;
  /** False when the fleet's Redis is down (the message is dropped). */
  publish(channel: string, message: string): boolean;
  subscribe(channel: string, onMessage: (message: string) => void): () => void;
  /** Fleet names of the gateways an agent is attached to now (presence), this one excluded or not. */
  gatewaysOf(agent: string): Promise<readonly string[]>;
}

/** The bus of a running fleet membership: its link's pub/sub and its presence keys. */
export function fleetBus(fleet: Pick<Fleet, 'link' | 'membership' | 'settings'>): FleetBus {
  return {
    name: fleet.settings.name,
    publish: (channel, message) => fleet.link.publish(channel, message),
    subscribe: (channel, onMessage) => fleet.link.subscribe(channel, onMessage),
    gatewaysOf: (agent) => fleet.membership.gatewaysOf(agent),
  };
}

/** What the bridge needs of the gateway's peer relay. */
export interface BridgeRelay {
  link(name: string): RelayedLink | undefined;
  offers(link: RelayedLink): OfferTable;
  readonly maxFlowsPerAgent: number;
  readonly clock: Clock;
  readonly counters: { signalsForwarded: number; peerDatagramsToService: number; peerDatagramsToOpener: number };
}

/** One message between gateways on `peers:<gateway>`; `g` is the sender's gateway. */
type Wire =
  | { k: 'sig'; g: string; from: string; to: string; p: string; offers: boolean }
  | { k: 'open'; g: string; x: string; y: string; tag: number; service: string; client: Endpoint }
  | { k: 'ok'; g: string; x: string; tag: number; peerTag: number }
  | { k: 'err'; g: string; x: string; tag: number; code: 'peer-offline' | 'not-allowed' | 'rate-limited'; message: string }
  | { k: 'd'; g: string; x: string; tag: number; p: string }
  | { k: 'r'; g: string; x: string; tag: number; p: string }
  | { k: 'c'; g: string; x: string; tag: number };

const CHANNEL = (gateway: string) => `peers:${gateway}`;
/** Datagrams of one flow held while its PEER_OPEN crosses to the other gateway and back. */
const PENDING_DATAGRAMS = 16;
/** How long a relayed PEER_OPEN waits for the other gateway's answer (a message lost while Redis was down). */
export const PENDING_OPEN_MS = 10_000;

/** A flow into one of our agents opened by an agent on another gateway. */
interface Incoming {
  readonly target: RelayedLink;
  readonly connectee: Connectee;
}

/**
 * Peer flows between agents on different gateways of a fleet that share no gateway: SIGNAL,
 * PEER_OPEN (UDP) and the flow's datagrams are relayed between the two gateways through the
 * fleet's Redis pub/sub, each gateway applying its own side's rules (the opener's rate and flow
 * caps where the opener is; the target's offers where the target is). ICE then finds the direct
 * path as between agents on one gateway. Relayed TCP between gateways is not offered
 * (`peer-offline`). Messages lost while Redis is down are lost: the agents' retries cover SIGNAL,
 * and a flow without answers idles out.
 */
export class FleetPeers {
  /** Flows our agents opened toward agents elsewhere: `x|tag` -> the target's gateway. */
  readonly #outgoing = new Map<string, string>();
  /** Opens sent elsewhere and not answered yet: `x|tag` -> the opener's first datagrams, held (bounded). */
  readonly #pending = new Map<string, { readonly held: Buffer[]; readonly timer: Timer }>();
  /** Flows into our agents from agents elsewhere: `gateway|x|tag`. */
  readonly #incoming = new Map<string, Incoming>();
  #nextPort = 1;
  readonly #stop: () => void;
  readonly counters = { relayedSignals: 0, relayedOpens: 0, relayedDatagrams: 0, notFound: 0 };

  constructor(
    private readonly bus: FleetBus,
    private readonly relay: BridgeRelay,
  ) {
    this.#stop = bus.subscribe(CHANNEL(bus.name), (m) => this.#onWire(m));
  }

  close(): void {
    this.#stop();
    for (const key of [...this.#pending.keys()]) this.#dropPending(key);
    for (const f of this.#incoming.values()) f.connectee.close();
    this.#incoming.clear();
    this.#outgoing.clear();
  }

  /** SIGNAL from local `x` for `peer`, who is not here: relayed to where `peer` is; a refusal comes back as SIGNAL_ERROR. */
  signal(x: RelayedLink, peer: string, payload: Buffer, xOffersPeer: boolean): void {
    void this.#toAgent(peer, { k: 'sig', g: this.bus.name, from: x.name, to: peer, p: payload.toString('base64'), offers: xOffersPeer }).then((sent) => {
      if (sent) this.counters.relayedSignals++;
      else x.send({ type: 'signal-error', peer, code: 'peer-offline' });
    });
  }

  /** A UDP PEER_OPEN from local `x` to `peer` elsewhere; the answer comes back as PEER_OPEN_OK or PEER_OPEN_ERROR. */
  open(x: RelayedLink, peer: string, service: string, tag: number, client: Endpoint): void {
    if (this.#flowsOf(x.name) >= this.relay.maxFlowsPerAgent) {
      x.send({ type: 'peer-open-error', tag, code: 'rate-limited', message: `at most ${this.relay.maxFlowsPerAgent} peer flows per agent` });
      return;
    }
    const key = `${x.name}|${tag}`;
    const held: Buffer[] = [];
    const timer = this.relay.clock.setTimeout(() => {
      if (this.#pending.get(key)?.held !== held) return;
      this.#pending.delete(key);
      x.send({ type: 'peer-open-error', tag, code: 'peer-offline', message: `no answer from the gateway of "${peer}" within ${PENDING_OPEN_MS} ms` });
    }, PENDING_OPEN_MS);
    this.#pending.set(key, { held, timer });
    void this.#toAgent(peer, { k: 'open', g: this.bus.name, x: x.name, y: peer, tag, service, client }).then((gw) => {
      if (gw) return void this.counters.relayedOpens++;
      if (this.#pending.get(key)?.held === held) this.#dropPending(key);
      x.send({ type: 'peer-open-error', tag, code: 'peer-offline', message: `agent "${peer}" is not connected to any gateway of the fleet` });
    });
  }

  /** A datagram from local `x` on `tag`: true when it belongs to a flow relayed to another gateway. */
  fromOpener(x: RelayedLink, tag: number, payload: Buffer): boolean {
    const held = this.#pending.get(`${x.name}|${tag}`)?.held;
    if (held) {
      // The agent sends right after PEER_OPEN; the answer takes a round trip through Redis.
      if (held.length < PENDING_DATAGRAMS) held.push(Buffer.from(payload));
      return true;
    }
    const gw = this.#outgoing.get(`${x.name}|${tag}`);
    if (gw === undefined) return false;
    this.bus.publish(CHANNEL(gw), JSON.stringify({ k: 'd', g: this.bus.name, x: x.name, tag, p: payload.toString('base64') } satisfies Wire));
    this.relay.counters.peerDatagramsToService++;
    return true;
  }

  /** DATAGRAM_CLOSE from local `x` on `tag`: true when the flow was relayed elsewhere (the other gateway is told). */
  closeFromOpener(x: RelayedLink, tag: number): boolean {
    const key = `${x.name}|${tag}`;
    if (this.#dropPending(key)) return true;
    const gw = this.#outgoing.get(key);
    if (gw === undefined) return false;
    this.#outgoing.delete(key);
    this.bus.publish(CHANNEL(gw), JSON.stringify({ k: 'c', g: this.bus.name, x: x.name, tag } satisfies Wire));
    return true;
  }

  /** Local agent `name` is gone for good: its flows elsewhere and the flows into it end. */
  closed(name: string): void {
    for (const key of [...this.#pending.keys()]) if (key.startsWith(`${name}|`)) this.#dropPending(key);
    for (const [key, gw] of [...this.#outgoing]) {
      const [x, tag] = key.split('|');
      if (x !== name) continue;
      this.#outgoing.delete(key);
      this.bus.publish(CHANNEL(gw), JSON.stringify({ k: 'c', g: this.bus.name, x: x!, tag: Number(tag) } satisfies Wire));
    }
    for (const [key, f] of [...this.#incoming]) if (f.target.name === name) this.#endIncoming(key, true);
  }

  /** Publishes `m` to the first gateway (not this one) where `agent` is present; resolves with its name, or undefined. */
  async #toAgent(agent: string, m: Wire): Promise<string | undefined> {
    let gateways: readonly string[] = [];
    try {
      gateways = (await this.bus.gatewaysOf(agent)).filter((g) => g !== this.bus.name);
    } catch {
      /* Redis down: nowhere */
    }
    const gw = gateways[0];
    if (gw === undefined || !this.bus.publish(CHANNEL(gw), JSON.stringify(m))) {
      this.counters.notFound++;
      return undefined;
    }
    return gw;
  }

  /** Relayed flows of local agent `name` (open or waiting for their answer). */
  #flowsOf(name: string): number {
    let n = 0;
    for (const key of [...this.#outgoing.keys(), ...this.#pending.keys()]) if (key.startsWith(`${name}|`)) n++;
    return n;
  }

  /** Forgets a PEER_OPEN waiting for its answer, with its timer; true when there was one. */
  #dropPending(key: string): boolean {
    const p = this.#pending.get(key);
    if (!p) return false;
    p.timer.cancel();
    return this.#pending.delete(key);
  }

  #reply(gw: string, m: Wire): void {
    this.bus.publish(CHANNEL(gw), JSON.stringify(m));
  }

  #onWire(raw: string): void {
    let m: Wire;
    try {
      m = JSON.parse(raw) as Wire;
    } catch {
      return;
    }
    if (typeof m !== 'object' || m === null || typeof m.g !== 'string') return;
    switch (m.k) {
      case 'sig': {
        const y = this.relay.link(m.to);
        // The one SIGNAL rule (peer-offers.ts `allowed`), with the sender's half from its gateway.
        if (!y?.reachable || !(m.offers || this.relay.offers(y).names(m.from))) return;
        y.send({ type: 'signal', peer: m.from, payload: Buffer.from(m.p, 'base64') });
        this.relay.counters.signalsForwarded++;
        return;
      }
      case 'open':
        return this.#openHere(m);
      case 'ok': {
        const key = `${m.x}|${m.tag}`;
        const held = this.#pending.get(key)?.held;
        const x = this.relay.link(m.x);
        this.#dropPending(key);
        if (!x || !held) return this.#reply(m.g, { k: 'c', g: this.bus.name, x: m.x, tag: m.tag });
        this.#outgoing.set(key, m.g);
        x.send({ type: 'peer-open-ok', tag: m.tag, peerTag: m.peerTag });
        for (const p of held) this.fromOpener(x, m.tag, p);
        return;
      }
      case 'err':
        this.#dropPending(`${m.x}|${m.tag}`);
        this.relay.link(m.x)?.send({ type: 'peer-open-error', tag: m.tag, code: m.code, message: m.message });
        return;
      case 'd': {
        const f = this.#incoming.get(`${m.g}|${m.x}|${m.tag}`);
        if (!f) return this.#reply(m.g, { k: 'c', g: this.bus.name, x: m.x, tag: m.tag });
        this.counters.relayedDatagrams++;
        f.connectee.send(Buffer.from(m.p, 'base64'), null);
        return;
      }
      case 'r': {
        const x = this.relay.link(m.x);
        if (!x || !this.#outgoing.has(`${m.x}|${m.tag}`)) return;
        this.counters.relayedDatagrams++;
        if (x.sendTagged(m.tag, Buffer.from(m.p, 'base64'))) this.relay.counters.peerDatagramsToOpener++;
        return;
      }
      case 'c': {
        const key = `${m.g}|${m.x}|${m.tag}`;
        if (this.#incoming.has(key)) return this.#endIncoming(key, false);
        if (this.#outgoing.delete(`${m.x}|${m.tag}`)) this.relay.link(m.x)?.send({ type: 'datagram-close', tag: m.tag });
        return;
      }
      default:
        return;
    }
  }

  /** A PEER_OPEN relayed from gateway `m.g`: the target's offers decide, a connectee is made as for a local opener. */
  #openHere(m: Extract<Wire, { k: 'open' }>): void {
    const refuse = (code: 'peer-offline' | 'not-allowed', message: string) => this.#reply(m.g, { k: 'err', g: this.bus.name, x: m.x, tag: m.tag, code, message });
    const y = this.relay.link(m.y);
    if (!y?.reachable) return refuse('peer-offline', `agent "${m.y}" is not connected`);
    const offer = this.relay.offers(y).find(m.service, 'udp', m.x);
    if (!offer) return refuse('not-allowed', `agent "${m.y}" does not offer udp service "${m.service}" to "${m.x}"`);
    const key = `${m.g}|${m.x}|${m.tag}`;
    if (this.#incoming.has(key)) return;
    const ip = canonicalIp(m.client.address);
    if (!ip) return refuse('not-allowed', 'bad client address');
    // Each relayed flow needs its own client port at the target (it keys sessions by address and port).
    const port = this.#nextPort;
    this.#nextPort = port >= 65535 ? 1 : port + 1;
    const connectee = y.openDatagram(offer.serviceId, { address: ip.address, port, family: ip.family }, {
      onUpstreamDatagram: (buf: Buffer) => this.#reply(m.g, { k: 'r', g: this.bus.name, x: m.x, tag: m.tag, p: buf.toString('base64') }),
      onUpstreamError: () => this.#endIncoming(key, true),
    }, false);
    this.#incoming.set(key, { target: y, connectee });
    y.send({ type: 'peer-flow', tag: connectee.tag, origin: { serviceId: offer.serviceId, client: connectee.client }, peer: m.x });
    this.#reply(m.g, { k: 'ok', g: this.bus.name, x: m.x, tag: m.tag, peerTag: connectee.tag });
  }

  #endIncoming(key: string, tellOpener: boolean): void {
    const f = this.#incoming.get(key);
    if (!f) return;
    this.#incoming.delete(key);
    f.connectee.close();
    if (!tellOpener) return;
    const [g, x, tag] = key.split('|');
    this.#reply(g!, { k: 'c', g: this.bus.name, x: x!, tag: Number(tag) });
  }
}

import type { Endpoint } from '../../../src/core/address.js';
import type { IceSocket } from '../../../src/ice/bases.js';
import type { DatagramIngress } from '../../../src/ice/agent.js';
import type { RelayAllocation, RelayReceiver, RelayTransport } from '../../../src/turn/relay-transport.js';
import type { StunPeer } from '../../../src/turn/stun-transaction.js';
import type { ManualClock } from '../../helpers/manual-clock.js';

/**
 * An in-memory UDP network for agent tests on a ManualClock: datagrams are delivered in a
 * microtask, in order, unless a `drop` rule says otherwise. No NAT: the lab tests real NATs.
 */
export class VirtualNet {
  readonly #ports = new Map<string, (buf: Buffer, from: StunPeer) => void>();
  /** Returns true to lose the datagram. */
  drop: (from: Endpoint, to: StunPeer, buf: Buffer) => boolean = () => false;
  delivered = 0;
  lost = 0;

  /** A socket at address:port whose received datagrams go to `ingress` once attached. */
  socket(address: string, port: number): { socket: IceSocket; attach(ingress: DatagramIngress): void; received: Buffer[] } {
    const local: Endpoint = { address, port, family: address.includes(':') ? 6 : 4 };
    let ingress: DatagramIngress | undefined;
    const received: Buffer[] = [];
    this.#ports.set(`${address}|${port}`, (buf, from) => {
      if (!ingress?.(buf, from)) received.push(buf);
    });
    return {
      socket: { local, send: (buf, p, a) => this.send(local, { address: a, port: p }, buf) },
      attach: (i) => void (ingress = i),
      received,
    };
  }

  /** Registers a raw receiver (a fake relay server, say). */
  listen(address: string, port: number, handler: (buf: Buffer, from: StunPeer) => void): void {
    this.#ports.set(`${address}|${port}`, handler);
  }

  send(from: Endpoint, to: StunPeer, buf: Buffer): void {
    const copy = Buffer.from(buf);
    if (this.drop(from, to, copy)) return void this.lost++;
    const target = this.#ports.get(`${to.address}|${to.port}`);
    if (!target) return void this.lost++;
    queueMicrotask(() => {
      this.delivered++;
      target(copy, { address: from.address, port: from.port });
    });
  }
}

/**
 * A relay in the virtual net that is not TURN: the "gateway relay" shape of RelayTransport. It
 * owns the relayed address and forwards both ways without permissions.
 */
export class FakeRelay implements RelayTransport {
  readonly relayed: Endpoint;
  #receiver: RelayReceiver | undefined;
  allocations = 0;
  closed = 0;

  constructor(readonly net: VirtualNet, address: string, port: number) {
    this.relayed = { address, port, family: 4 };
    net.listen(address, port, (buf, from) => this.#receiver?.onRelayDatagram(buf, { address: from.address, port: from.port, family: 4 }));
  }

  async allocate(): Promise<RelayAllocation> {
    this.allocations++;
    return { relayed: this.relayed };
  }

  send(buf: Buffer, peer: StunPeer): void {
    this.net.send(this.relayed, peer, buf);
  }

  setReceiver(receiver: RelayReceiver): void {
    this.#receiver = receiver;
  }

  async close(): Promise<void> {
    this.closed++;
  }

  /** The relay dies: its receiver hears about it. */
  fail(err: Error): void {
    this.#receiver?.onRelayClosed(err);
  }
}

/** Moves the clock `ms` in steps, letting microtasks and immediates run after each step. */
export async function run(clock: ManualClock, ms: number, stepMs = 10): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(Math.min(stepMs, ms - t));
    await new Promise((r) => setImmediate(r));
  }
}

/** Runs the clock until `cond` holds; fails after `limitMs` of clock time. Returns the clock time it took. */
export async function runUntil(clock: ManualClock, cond: () => boolean, what: string, limitMs = 60_000, stepMs = 10): Promise<number> {
  const start = clock.now();
  await new Promise((r) => setImmediate(r));
  while (!cond()) {
    if (clock.now() - start > limitMs) throw new Error(`${what}: not within ${limitMs} ms of clock time`);
    clock.advance(stepMs);
    await new Promise((r) => setImmediate(r));
  }
  return clock.now() - start;
}

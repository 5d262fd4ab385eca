import type { Endpoint } from '../core/address.js';
import { SluiceError } from '../core/errors.js';
import type { StunPeer, StunTransactionTable } from '../turn/stun-transaction.js';
import { addressKey, type IceCandidate } from './candidate.js';
import type { IceRole } from './check-message.js';
import { pairPriority } from './priority.js';

/**
 * The check list of one component (RFC 8445 §6.1.2): candidate pairs, their states, the order
 * they are checked in, and the triggered-check queue. No I/O; the agent sends the checks.
 */

/**
 * Where a local candidate sends from: one of the agent's sockets (host, and the base of srflx and
 * prflx candidates) or a relay allocation (relayed candidates are their own base).
 */
export interface IceBase {
  readonly id: number;
  readonly kind: 'socket' | 'relay';
  readonly address: Endpoint;
  /** The base's candidate; its priority and foundation are the pair's local side. */
  readonly candidate: IceCandidate;
  /** Client transactions (checks, and Binding requests to STUN servers) sent from this base. */
  readonly table: StunTransactionTable;
  /** Never throws. */
  send(buf: Buffer, to: StunPeer): void;
}

/** RFC 8445 §6.1.2.6 pair states. */
export type PairState = 'frozen' | 'waiting' | 'in-progress' | 'succeeded' | 'failed';

const NEXT: Readonly<Record<PairState, readonly PairState[]>> = {
  // → failed without a check only when the pair's base is gone (a relay allocation was lost).
  frozen: ['waiting', 'failed'],
  waiting: ['in-progress', 'failed'],
  // back to waiting after a 487 (RFC 8445 §7.2.5.1): the check is repeated in the new role.
  'in-progress': ['succeeded', 'failed', 'waiting'],
  succeeded: [],
  // a triggered check revives a failed pair (RFC 8445 §7.3.1.4).
  failed: ['waiting'],
};

export interface CandidatePair {
  /** `${base id}|${remote address}|${remote port}`. */
  readonly id: string;
  readonly base: IceBase;
  /** Replaced when signalling later names a peer-reflexive candidate (RFC 8445 §7.3.1.3). */
  remote: IceCandidate;
  state: PairState;
  priority: bigint;
  /** The local candidate the peer saw in a successful check (XOR-MAPPED-ADDRESS): set on valid pairs. */
  mapped: IceCandidate | undefined;
  /** Clock ms when the pair became valid. */
  validAt: number | undefined;
  /** The controlled side received USE-CANDIDATE for this pair. */
  remoteNominated: boolean;
  rttMs: number | undefined;
}

export function transition(pair: CandidatePair, to: PairState): void {
  if (!NEXT[pair.state].includes(to)) throw new SluiceError('SLUICE_ERR_ICE_STATE', `candidate pair ${pair.id}: ${pair.state} → ${to}`);
  pair.state = to;
}

export function pairFoundation(p: CandidatePair): string {
  return `${p.base.candidate.foundation}:${p.remote.foundation}`;
}

/** The pair as it counts once valid: the peer-seen local candidate instead of the base's. */
export function validPriority(p: CandidatePair, role: IceRole): bigint {
  const local = (p.mapped ?? p.base.candidate).priority;
  return role === 'controlling' ? pairPriority(local, p.remote.priority) : pairPriority(p.remote.priority, local);
}

export function pairId(base: IceBase, remote: StunPeer): string {
  return `${base.id}|${addressKey(remote.address, remote.port)}`;
}

export class CheckList {
  #pairs: CandidatePair[] = [];
  readonly #byId = new Map<string, CandidatePair>();
  #triggered: CandidatePair[] = [];

  constructor(readonly maxPairs = 100) {}

  get size(): number {
    return this.#pairs.length;
  }

  /** Highest priority first. */
  all(): readonly CandidatePair[] {
    return this.#pairs;
  }

  get(base: IceBase, remote: StunPeer): CandidatePair | undefined {
    return this.#byId.get(pairId(base, remote));
  }

  /**
   * Adds a frozen pair (or returns the existing one). When the list is full the lowest-priority
   * pair not yet checked makes room (RFC 8445 §6.1.2.5); if there is none, undefined.
   */
  add(base: IceBase, remote: IceCandidate, role: IceRole): CandidatePair | undefined {
    const id = pairId(base, remote);
    const existing = this.#byId.get(id);
    if (existing) return existing;
    const pair: CandidatePair = {
      id, base, remote, state: 'frozen', priority: 0n, mapped: undefined, validAt: undefined, remoteNominated: false, rttMs: undefined,
    };
    pair.priority = validPriority(pair, role);
    if (this.#pairs.length >= this.maxPairs) {
      const victim = [...this.#pairs].reverse().find((p) => p.state === 'frozen' || p.state === 'waiting');
      if (!victim || victim.priority > pair.priority) return undefined;
      this.#remove(victim);
    }
    this.#byId.set(id, pair);
    this.#pairs.push(pair);
    this.#sort();
    return pair;
  }

  /** After a role change every priority changes (G and D swap). */
  reprioritise(role: IceRole): void {
    for (const p of this.#pairs) p.priority = validPriority(p, role);
    this.#sort();
  }

  /** Queues a triggered check; a frozen or failed pair becomes waiting. In-progress and succeeded pairs are left alone. */
  trigger(pair: CandidatePair): boolean {
    if (pair.state === 'in-progress' || pair.state === 'succeeded') return false;
    if (pair.state !== 'waiting') transition(pair, 'waiting');
    if (!this.#triggered.includes(pair)) this.#triggered.push(pair);
    return true;
  }

  /** The next pair to check: the triggered queue first, then (if `ordinary`) RFC 8445 §6.1.4.2. */
  next(ordinary: boolean): CandidatePair | undefined {
    while (this.#triggered.length > 0) {
      const p = this.#triggered.shift()!;
      if (p.state === 'waiting' && this.#byId.get(p.id) === p) return p;
    }
    if (!ordinary) return undefined;
    const waiting = this.#pairs.find((p) => p.state === 'waiting');
    if (waiting) return waiting;
    const busy = new Set(this.#pairs.filter((p) => p.state === 'in-progress').map(pairFoundation));
    const frozen = this.#pairs.find((p) => p.state === 'frozen' && !busy.has(pairFoundation(p)));
    if (frozen) transition(frozen, 'waiting');
    return frozen;
  }

  /** A check succeeded: frozen pairs of the same foundation are worth trying now (RFC 8445 §7.2.5.3.3). */
  unfreeze(foundation: string): void {
    for (const p of this.#pairs) if (p.state === 'frozen' && pairFoundation(p) === foundation) transition(p, 'waiting');
  }

  /** True while some pair may still succeed by checks this side starts. */
  get pending(): boolean {
    return this.#triggered.length > 0 || this.#pairs.some((p) => p.state !== 'succeeded' && p.state !== 'failed');
  }

  /** Pairs that run through `base` fail at once (its relay is gone). */
  failBase(base: IceBase): void {
    for (const p of this.#pairs) {
      if (p.base === base && p.state !== 'failed' && p.state !== 'succeeded') transition(p, 'failed');
    }
  }

  clear(): void {
    this.#pairs = [];
    this.#byId.clear();
    this.#triggered = [];
  }

  #remove(p: CandidatePair): void {
    this.#pairs = this.#pairs.filter((x) => x !== p);
    this.#byId.delete(p.id);
    this.#triggered = this.#triggered.filter((x) => x !== p);
  }

  #sort(): void {
    this.#pairs.sort((a, b) => (a.priority > b.priority ? -1 : a.priority < b.priority ? 1 : 0));
  }
}

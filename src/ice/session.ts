import { canonicalIp } from '../core/address.js';
import { addressKey, type IceCandidate } from './candidate.js';
import { CheckList, type CandidatePair } from './checklist.js';
import type { IceCredentials } from './credentials.js';
import type { StunPeer } from '../turn/stun-transaction.js';

/**
 * What one ICE session knows (RFC 8445 §9: a restart begins a new one): the local credentials,
 * what the peer sent, the check list, and what was nominated. The agent, the checker and the
 * responder share it; a restart replaces it whole, and ending it aborts its checks in flight.
 */
export class IceSession {
  readonly list: CheckList;
  readonly remote = new Map<string, IceCandidate>();
  readonly nominationFailed = new Set<CandidatePair>();
  remoteCredentials: IceCredentials | undefined;
  /** The peer's end-of-candidates arrived. */
  remoteEnd = false;
  selected: CandidatePair | undefined;
  nominating: CandidatePair | undefined;
  readonly #ac = new AbortController();

  constructor(
    readonly credentials: IceCredentials,
    maxPairs: number,
  ) {
    this.list = new CheckList(maxPairs);
  }

  /** Aborted when the session ends (restart, close). */
  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  get ended(): boolean {
    return this.#ac.signal.aborted;
  }

  end(): void {
    this.#ac.abort();
  }

  /** The peer's candidate at `from` (as a socket reports it; dual-stack spellings are canonicalised). */
  remoteAt(from: StunPeer): IceCandidate | undefined {
    const c = this.remote.get(addressKey(from.address, from.port));
    if (c) return c;
    const ip = canonicalIp(from.address)?.address;
    return ip === undefined ? undefined : this.remote.get(addressKey(ip, from.port));
  }
}

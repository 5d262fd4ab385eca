import type { Clock, Timer } from '../core/clock.js';
import type { IceTiming } from './agent-options.js';
import { canMove, type IceAgentState } from './agent-state.js';
import type { SelectedPairInfo } from './channel.js';
import type { CandidatePair } from './checklist.js';
import { ConsentFreshness, type ConsentStatus } from './consent.js';
import { isRelayed } from './nomination.js';

export interface IceConnectivityDeps {
  readonly clock: Clock;
  /** [0, 1), for the consent jitter. */
  readonly random: () => number;
  readonly timing: Pick<IceTiming, 'consentIntervalMs' | 'consentStaleMs' | 'consentExpireMs' | 'connectTimeoutMs'>;
  /** Sends one consent check on `pair` (RFC 7675 §5.1); true for an authenticated success. Never rejects. */
  readonly check: (pair: CandidatePair) => Promise<boolean>;
  /** Stops the connectivity checks; called first whenever the agent stops sending (failed, closed). */
  readonly stopChecks: () => void;
  /** Every change of state, synchronously, once it is made. */
  readonly onState: (to: IceAgentState, from: IceAgentState) => void;
}

/**
 * The ICE agent's state (agent-state.ts) and the timers that move it: the connect deadline while
 * checking, and RFC 7675 consent freshness on the pair that carries data. It holds that pair:
 * the selected one, kept across an ICE restart until the new session selects one, and dropped on
 * failure (RFC 7675 §5.1: no more sending on a pair without consent).
 *
 * Contract: single-threaded. `onState` runs synchronously inside the move and may call any
 * method. A move the transition table refuses is ignored, so `closed` is final. The caller
 * decides when a pair is selected and when checking has run out; this object decides nothing
 * about pairs.
 */
export class IceConnectivity {
  readonly #deps: IceConnectivityDeps;
  #state: IceAgentState = 'idle';
  #pair: CandidatePair | undefined;
  #consent: ConsentFreshness | undefined;
  #connectTimer: Timer | undefined;

  constructor(deps: IceConnectivityDeps) {
    this.#deps = deps;
  }

  get state(): IceAgentState {
    return this.#state;
  }

  /** The pair data goes over, or undefined before a selection and after a failure. */
  get pair(): CandidatePair | undefined {
    return this.#pair;
  }

  get info(): SelectedPairInfo | undefined {
    return this.#pair && selectedPairInfo(this.#pair);
  }

  /** To `checking` (remote credentials known, or a restart), with a new connect deadline: `failed` if still checking then. */
  startChecking(): void {
    this.#setState('checking');
    this.#connectTimer?.cancel();
    this.#connectTimer = this.#deps.clock.setTimeout(() => {
      if (this.#state === 'checking') this.fail();
    }, this.#deps.timing.connectTimeoutMs);
  }

  /** `pair` carries data from now on: no more deadline, consent starts afresh on it, `connected`. */
  select(pair: CandidatePair): void {
    const d = this.#deps;
    this.#pair = pair;
    this.#connectTimer?.cancel();
    this.#consent?.stop();
    this.#consent = new ConsentFreshness(
      { clock: d.clock, random: d.random, check: () => d.check(pair), onStatus: (st) => this.#onConsent(pair, st) },
      { intervalMs: d.timing.consentIntervalMs, staleMs: d.timing.consentStaleMs, expireMs: d.timing.consentExpireMs },
    );
    this.#setState('connected');
  }

  /** An ICE restart: the old session's consent checks end; the pair keeps carrying data. */
  dropConsent(): void {
    this.#consent?.stop();
    this.#consent = undefined;
  }

  /** Everything stops and the pair is dropped: `failed`. */
  fail(): void {
    this.#stop();
    this.#pair = undefined;
    this.#setState('failed');
  }

  /** `closed`, then everything stops (the pair is kept for what reads it last). */
  close(): void {
    this.#setState('closed');
    this.#stop();
  }

  #onConsent(pair: CandidatePair, status: ConsentStatus): void {
    if (pair !== this.#pair || this.#state === 'closed') return;
    if (status === 'stale') this.#setState('disconnected');
    else if (status === 'fresh') this.#setState('connected');
    else this.fail();
  }

  #stop(): void {
    this.#deps.stopChecks();
    this.#consent?.stop();
    this.#consent = undefined;
    this.#connectTimer?.cancel();
    this.#connectTimer = undefined;
  }

  #setState(to: IceAgentState): void {
    const from = this.#state;
    if (from === to || !canMove(from, to)) return;
    this.#state = to;
    this.#deps.onState(to, from);
  }
}

/** What a record shows of a pair: this side as the peer sees it (the mapped address a check found, else the base's candidate). */
export function selectedPairInfo(p: CandidatePair): SelectedPairInfo {
  const l = p.mapped ?? p.base.candidate;
  return {
    local: { type: l.type, address: l.address, port: l.port },
    remote: { type: p.remote.type, address: p.remote.address, port: p.remote.port },
    base: p.base.address, relayed: isRelayed(p), rttMs: p.rttMs,
  };
}

import { canonicalIp, type Endpoint } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import { ErrorCode, StunErrorCode, XorMappedAddress, getAttribute, type DecodedStunMessage } from '../protocol/stun/index.js';
import type { IceTiming } from './agent-options.js';
import type { IceCandidate } from './candidate.js';
import { checkResponseAuthentic, encodeCheckRequest, type IceRole } from './check-message.js';
import { pairFoundation, transition, type CandidatePair, type IceBase } from './checklist.js';
import { decideNomination } from './nomination.js';
import { candidatePriority } from './priority.js';
import type { IceSession } from './session.js';

/**
 * Sending connectivity checks (RFC 8445 §6.1.4, §7.2): one every Ta from the triggered queue or
 * the check list, their responses turned into valid pairs, 487 repaired, and regular nomination
 * by the controlling side (§8.1.1). Consent checks (RFC 7675) go out through `check` as well.
 */

export type CheckKind = 'ordinary' | 'nominate' | 'consent';

export interface CheckerHost {
  readonly clock: Clock;
  readonly timing: IceTiming;
  readonly session: IceSession;
  readonly role: IceRole;
  readonly tieBreaker: bigint;
  readonly closed: boolean;
  switchRole(role: IceRole): void;
  /** The local candidate the peer saw (a prflx one is made up if needed). */
  localFor(base: IceBase, mapped: Endpoint, priority: number): IceCandidate;
  select(pair: CandidatePair): void;
  /** Called when a check ends badly: maybe every pair has failed now. */
  maybeFail(): void;
}

export class Checker {
  readonly #host: CheckerHost;
  #pacer: Timer | undefined;
  #nominationTimer: Timer | undefined;

  constructor(host: CheckerHost) {
    this.#host = host;
  }

  /** Starts Ta pacing unless it runs; the first check goes at once. */
  kick(): void {
    const h = this.#host;
    if (this.#pacer || h.closed || !h.session.remoteCredentials) return;
    this.#pacer = h.clock.setInterval(() => this.#tick(), h.timing.taMs);
    this.#tick();
  }

  stop(): void {
    this.#pacer?.cancel();
    this.#pacer = undefined;
    this.#nominationTimer?.cancel();
    this.#nominationTimer = undefined;
  }

  /** Sends one check on `pair`, handles the outcome, and resolves true for an authenticated success. */
  async check(pair: CandidatePair, kind: CheckKind): Promise<boolean> {
    const h = this.#host;
    const session = h.session;
    const remote = session.remoteCredentials;
    if (!remote || session.ended) return false;
    const role = h.role;
    // The PRIORITY a peer-reflexive candidate from this base would get (§7.1.1); relay type for a relay base, so a
    // relayed path learned by a check can never outrank a direct one.
    const priority = candidatePriority(pair.base.kind === 'relay' ? 'relay' : 'prflx', (pair.base.candidate.priority >> 8) & 0xffff);
    const bytes = encodeCheckRequest({
      localUfrag: session.credentials.ufrag, remoteUfrag: remote.ufrag, remotePwd: remote.pwd, priority, role,
      tieBreaker: h.tieBreaker, useCandidate: kind === 'nominate',
    });
    if (kind === 'ordinary') transition(pair, 'in-progress');
    const to = pair.remote;
    try {
      const res = await pair.base.table.request(bytes, to, {
        signal: session.signal,
        timing: kind === 'consent' ? h.timing.consentCheck : h.timing.check,
        // Symmetric responses only (§7.2.5.2.1), signed with the peer's password.
        accept: (r, from) => from.port === to.port && canonicalIp(from.address)?.address === to.address && checkResponseAuthentic(r, remote.pwd),
      });
      if (session.ended) return false;
      return this.#onResponse(pair, kind, role, res.response, res.rttMs, priority);
    } catch {
      if (!session.ended) this.#failed(pair, kind);
      return false;
    }
  }

  /** Nominates the best valid pair when decideNomination says so (controlling side only). */
  evaluateNomination(): void {
    const h = this.#host;
    const s = h.session;
    if (h.role !== 'controlling' || s.nominating || s.selected || h.closed) return;
    this.#nominationTimer?.cancel();
    this.#nominationTimer = undefined;
    const pairs = s.list.all().filter((p) => !s.nominationFailed.has(p));
    const d = decideNomination(pairs, h.clock.now(), { directDelayMs: h.timing.directNominationDelayMs, relayDelayMs: h.timing.relayNominationDelayMs });
    if (d.kind === 'wait') {
      this.#nominationTimer = h.clock.setTimeout(() => this.evaluateNomination(), d.retryAt - h.clock.now());
    } else if (d.kind === 'nominate') {
      s.nominating = d.pair;
      void this.check(d.pair, 'nominate');
    }
  }

  #tick(): void {
    const s = this.#host.session;
    const pair = s.remoteCredentials ? s.list.next(!s.selected) : undefined;
    if (pair) return void this.check(pair, 'ordinary');
    this.#pacer?.cancel();
    this.#pacer = undefined;
    this.#host.maybeFail();
  }

  #onResponse(pair: CandidatePair, kind: CheckKind, sentAs: IceRole, res: DecodedStunMessage, rttMs: number | undefined, priority: number): boolean {
    const h = this.#host;
    const s = h.session;
    if (res.cls === 'error') {
      if (getAttribute(res, ErrorCode)?.code !== StunErrorCode.RoleConflict || kind === 'consent') return this.#failed(pair, kind);
      // §7.2.5.1: take the role opposite to the one the check claimed, and check the pair again.
      if (h.role === sentAs) h.switchRole(sentAs === 'controlling' ? 'controlled' : 'controlling');
      if (pair.state === 'in-progress') transition(pair, 'waiting');
      if (kind === 'nominate') s.nominating = undefined;
      s.list.trigger(pair);
      this.kick();
      return false;
    }
    let mapped: Endpoint | undefined;
    try {
      mapped = getAttribute(res, XorMappedAddress);
    } catch {
      mapped = undefined;
    }
    if (!mapped) return this.#failed(pair, kind);
    if (rttMs !== undefined) pair.rttMs = rttMs;
    if (kind === 'consent') return true;
    pair.mapped = h.localFor(pair.base, mapped, priority);
    if (pair.state === 'in-progress') {
      transition(pair, 'succeeded');
      pair.validAt = h.clock.now();
      s.list.unfreeze(pairFoundation(pair));
    }
    s.list.reprioritise(h.role);
    if (kind === 'nominate' || (h.role === 'controlled' && pair.remoteNominated)) h.select(pair);
    else this.evaluateNomination();
    this.kick();
    return true;
  }

  #failed(pair: CandidatePair, kind: CheckKind): false {
    const s = this.#host.session;
    if (kind === 'ordinary' && pair.state === 'in-progress') transition(pair, 'failed');
    if (kind === 'nominate') {
      s.nominating = undefined;
      s.nominationFailed.add(pair);
    }
    if (kind !== 'consent') {
      this.evaluateNomination(); // a better pair that failed may free the best valid one
      this.#host.maybeFail();
    }
    return false;
  }
}

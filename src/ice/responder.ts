import { canonicalIp, type Endpoint } from '../core/address.js';
import { StunErrorCode, type DecodedStunMessage } from '../protocol/stun/index.js';
import { addressKey, foundationOf, type IceCandidate } from './candidate.js';
import { encodeCheckError, encodeCheckSuccess, readCheckRequest, type IceRole } from './check-message.js';
import type { CandidatePair, IceBase } from './checklist.js';
import type { IceSession } from './session.js';
import type { StunPeer } from '../turn/stun-transaction.js';
import type { UnverifiedReplyGuard } from '../core/unverified-reply-guard.js';

/**
 * Answering connectivity checks (RFC 8445 §7.3): authenticate, repair role conflicts, answer
 * with the source address, learn peer-reflexive candidates, queue triggered checks, and note
 * USE-CANDIDATE on the controlled side.
 */

export interface ResponderHost {
  readonly session: IceSession;
  readonly role: IceRole;
  readonly tieBreaker: bigint;
  readonly maxRemoteCandidates: number;
  switchRole(role: IceRole): void;
  /** Adds the pair for base and remote to the check list (or returns it). */
  pair(base: IceBase, remote: IceCandidate): CandidatePair | undefined;
  /** A pair is valid and nominated: select it. */
  select(pair: CandidatePair): void;
  /** There is a triggered check to send. */
  kick(): void;
  /** Bounds every answer by its request: a check's source address is not verified. */
  readonly replies: UnverifiedReplyGuard;
}

/** Handles one Binding request on `base`. Returns false when its USERNAME is for another agent on the socket. */
export function answerCheck(host: ResponderHost, base: IceBase, msg: DecodedStunMessage, from: StunPeer): boolean {
  const { session } = host;
  const { ufrag, pwd } = session.credentials;
  const v = readCheckRequest(msg, ufrag, pwd);
  if (v.kind === 'not-mine') return false;
  if (v.kind === 'reject') return reply(host, base, encodeCheckError(msg, v.code, pwd, v.unknown), msg, from);
  // Role conflict (§7.3.1.1): the larger tie-breaker controls; the loser of a check it sent gets 487.
  if (v.role === host.role && v.tieBreaker !== undefined) {
    const weWin = host.tieBreaker >= v.tieBreaker;
    if (weWin === (host.role === 'controlling')) return reply(host, base, encodeCheckError(msg, StunErrorCode.RoleConflict, pwd), msg, from);
    host.switchRole(host.role === 'controlling' ? 'controlled' : 'controlling');
  }
  const ip = canonicalIp(from.address);
  if (!ip) return true;
  const source: Endpoint = { address: ip.address, port: from.port, family: ip.family };
  reply(host, base, encodeCheckSuccess(msg, source, pwd), msg, from); // to the address exactly as the socket reported it
  const remote = session.remoteAt(source) ?? learnPeerReflexive(host, source, v.priority);
  if (!remote) return true;
  const pair = host.pair(base, remote);
  if (!pair) return true;
  if (v.useCandidate && host.role === 'controlled') pair.remoteNominated = true;
  if (pair.state === 'succeeded') {
    if (pair.remoteNominated && host.role === 'controlled') host.select(pair);
  } else if (session.list.trigger(pair)) {
    host.kick();
  }
  return true;
}

/** A remote candidate only a check revealed (§7.3.1.3): the priority is the one the check carried. */
function learnPeerReflexive(host: ResponderHost, source: Endpoint, priority: number): IceCandidate | undefined {
  if (host.session.remote.size >= host.maxRemoteCandidates) return undefined;
  const c: IceCandidate = {
    foundation: foundationOf('prflx', source.address), component: 1, transport: 'udp', priority,
    address: source.address, port: source.port, family: source.family, type: 'prflx',
  };
  host.session.remote.set(addressKey(source.address, source.port), c);
  return c;
}

function reply(host: ResponderHost, base: IceBase, bytes: Buffer, req: DecodedStunMessage, to: StunPeer): true {
  if (host.replies.allows(bytes.length, req.raw.length)) base.send(bytes, to);
  return true;
}

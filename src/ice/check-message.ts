import type { Endpoint } from '../core/address.js';
import {
  ErrorCode, IceControlled, IceControlling, Priority, StunErrorCode, StunMethod, UnknownAttributes, UseCandidate, Username,
  XorMappedAddress, attr, encodeStunMessage, getAttribute, hasAttribute, randomTransactionId, shortTermKey, stunMessage,
  verifyIntegrity, StunAttr, type AttributeEntry, type DecodedStunMessage,
} from '../protocol/stun/index.js';

/**
 * Connectivity-check messages (RFC 8445 §7.2.2, §7.3): Binding requests with short-term
 * credentials and their responses. Pure: no sockets, no clock. RFC 7675 consent checks are the
 * same requests without USE-CANDIDATE.
 */

export type IceRole = 'controlling' | 'controlled';

export interface CheckRequest {
  readonly localUfrag: string;
  readonly remoteUfrag: string;
  /** Keys MESSAGE-INTEGRITY: checks are signed with the password of the agent they go to. */
  readonly remotePwd: string;
  /** The peer-reflexive priority this side would have from the check's base (RFC 8445 §7.1.1). */
  readonly priority: number;
  readonly role: IceRole;
  readonly tieBreaker: bigint;
  readonly useCandidate: boolean;
}

export function encodeCheckRequest(r: CheckRequest, transactionId = randomTransactionId()): Buffer {
  const attrs: AttributeEntry[] = [
    attr(Username, `${r.remoteUfrag}:${r.localUfrag}`),
    attr(Priority, r.priority),
    r.role === 'controlling' ? attr(IceControlling, r.tieBreaker) : attr(IceControlled, r.tieBreaker),
  ];
  if (r.useCandidate) attrs.push(attr(UseCandidate, true));
  return encodeStunMessage(stunMessage('request', StunMethod.Binding, transactionId, attrs), {
    integrityKey: shortTermKey(r.remotePwd), fingerprint: true,
  });
}

/** A check that passed authentication, with what the agent acts on. */
export interface IncomingCheck {
  readonly kind: 'check';
  readonly remoteUfrag: string;
  readonly priority: number;
  readonly useCandidate: boolean;
  /** The sender's claimed role and tie-breaker. */
  readonly role: IceRole | undefined;
  readonly tieBreaker: bigint | undefined;
}

/**
 * What to do with a Binding request (RFC 8445 §7.3, RFC 8489 §9.1.3):
 * - `not-mine`: USERNAME names another ufrag. Leave it to another agent on the same socket.
 * - `reject`: answer with the error code (400 malformed, 401 bad integrity, 420 unknown attributes).
 * - `check`: authenticated; answer it.
 */
export type CheckVerdict = IncomingCheck | { readonly kind: 'not-mine' } | { readonly kind: 'reject'; readonly code: number; readonly unknown?: readonly number[] };

export function readCheckRequest(msg: DecodedStunMessage, localUfrag: string, localPwd: string): CheckVerdict {
  let username: string | undefined;
  let priority: number | undefined;
  try {
    username = getAttribute(msg, Username);
    priority = getAttribute(msg, Priority);
  } catch {
    return { kind: 'reject', code: StunErrorCode.BadRequest };
  }
  if (username === undefined || !msg.messageIntegrity) return { kind: 'reject', code: StunErrorCode.BadRequest };
  const colon = username.indexOf(':');
  if (colon < 0 || username.slice(0, colon) !== localUfrag) return { kind: 'not-mine' };
  if (verifyIntegrity(msg, shortTermKey(localPwd)) !== 'ok') return { kind: 'reject', code: StunErrorCode.Unauthorized };
  if (msg.unknownAttributes.length > 0) return { kind: 'reject', code: StunErrorCode.UnknownAttribute, unknown: msg.unknownAttributes };
  if (priority === undefined) return { kind: 'reject', code: StunErrorCode.BadRequest };
  const controlling = getAttribute(msg, IceControlling);
  const controlled = getAttribute(msg, IceControlled);
  return {
    kind: 'check',
    remoteUfrag: username.slice(colon + 1),
    priority,
    useCandidate: hasAttribute(msg, StunAttr.UseCandidate),
    role: controlling !== undefined ? 'controlling' : controlled !== undefined ? 'controlled' : undefined,
    tieBreaker: controlling ?? controlled,
  };
}

/** Success: XOR-MAPPED-ADDRESS = where the request came from, signed with our own password. */
export function encodeCheckSuccess(req: DecodedStunMessage, source: Endpoint, localPwd: string): Buffer {
  return encodeStunMessage(stunMessage('success', StunMethod.Binding, req.transactionId, [attr(XorMappedAddress, source)]), {
    integrityKey: shortTermKey(localPwd), fingerprint: true,
  });
}

/**
 * An error response. 487 (role conflict) is signed with our password like a success; 400 and
 * 401 are not, because integrity is what failed or could not be checked (RFC 8489 §9.1.3).
 */
export function encodeCheckError(req: DecodedStunMessage, code: number, localPwd: string, unknown?: readonly number[]): Buffer {
  const reasons: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 420: 'Unknown Attribute', 487: 'Role Conflict' };
  const attrs: AttributeEntry[] = [attr(ErrorCode, { code, reason: reasons[code] ?? '' })];
  if (unknown?.length) attrs.push(attr(UnknownAttributes, unknown));
  const signed = code === StunErrorCode.RoleConflict || code === StunErrorCode.UnknownAttribute;
  return encodeStunMessage(stunMessage('error', StunMethod.Binding, req.transactionId, attrs), {
    integrityKey: signed ? shortTermKey(localPwd) : undefined, fingerprint: true,
  });
}

/** Whether a response to our check is genuine: signed with the peer's password (errors may be unsigned). */
export function checkResponseAuthentic(res: DecodedStunMessage, remotePwd: string): boolean {
  const v = verifyIntegrity(res, shortTermKey(remotePwd));
  return v === 'ok' || (v === 'absent' && res.cls === 'error');
}

import { addressKey, parseCandidate, type IceCandidate } from './candidate.js';
import type { IceRole } from './check-message.js';
import type { IceSession } from './session.js';

/**
 * What became of a signalled candidate: `ignored` (unparsable, TCP, another component than 1, or
 * the table is full), `known` (already there under its signalled type: nothing to do), `upgraded`
 * (it replaced a peer-reflexive entry; the pairs were re-prioritised), or the candidate itself,
 * new in the table and to be paired with every base.
 */
export type RemoteIntake = 'ignored' | 'known' | 'upgraded' | IceCandidate;

/**
 * Takes one candidate the peer signalled (an IceCandidate or its SDP text) into the session's
 * remote table (trickle: any time, any order). At most `max` remote candidates are kept,
 * signalled and peer-reflexive together. A peer-reflexive one that signalling names later takes
 * its real type and priority (RFC 8445 §7.3.1.3), in the table and in its pairs. Pairing a new
 * candidate and kicking the checks are the caller's.
 */
export function takeRemoteCandidate(session: IceSession, candidate: IceCandidate | string, max: number, role: IceRole): RemoteIntake {
  const c = typeof candidate === 'string' ? parseCandidate(candidate) : candidate;
  if (typeof c === 'string' || c.component !== 1) return 'ignored';
  const key = addressKey(c.address, c.port);
  const known = session.remote.get(key);
  if (known && known.type !== 'prflx') return 'known';
  if (!known && session.remote.size >= max) return 'ignored';
  session.remote.set(key, c);
  if (!known) return c;
  for (const p of session.list.all()) if (p.remote === known) p.remote = c;
  session.list.reprioritise(role);
  return 'upgraded';
}

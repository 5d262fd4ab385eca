import { StunMethod, decodeStunDatagram, type DecodedStunMessage } from '../protocol/stun/index.js';
import type { StunPeer } from '../turn/stun-transaction.js';
import type { IceCandidate } from './candidate.js';
import { ICE_DATA_PREFIX } from './channel.js';

/**
 * Sorting the datagrams of a socket the ICE agent shares with other traffic (RFC 7983 §7: by the
 * first byte). Pure functions over the bytes: nothing is kept, and nothing but decodeBinding
 * allocates.
 */

/**
 * `ice-data`: an application datagram framed by channel.ts; `stun-request`: 20 bytes or more
 * with both STUN class bits clear (RFC 8489 §5), told apart before any decoding so a refused
 * source costs nothing; `stun`: any other first byte 0-3; `other`: the rest (empty included),
 * left to the socket's other users.
 */
export type IceDatagramKind = 'ice-data' | 'stun-request' | 'stun' | 'other';

export function iceDatagramKind(buf: Buffer): IceDatagramKind {
  const first = buf[0];
  if (first === undefined) return 'other';
  if (first === ICE_DATA_PREFIX) return 'ice-data';
  if (first > 3) return 'other';
  return buf.length >= 20 && (first & 0x01) === 0 && (buf[1]! & 0x10) === 0 ? 'stun-request' : 'stun';
}

/** The Binding message in `buf`, or undefined for anything else: not STUN, malformed, another method, or a bad FINGERPRINT. */
export function decodeBinding(buf: Buffer): DecodedStunMessage | undefined {
  let msg: DecodedStunMessage | undefined;
  try {
    msg = decodeStunDatagram(buf);
  } catch {
    return undefined;
  }
  if (!msg || msg.fingerprint === 'invalid' || msg.method !== StunMethod.Binding) return undefined;
  return msg;
}

/** `from` is candidate `c`, also when a dual-stack socket reports its IPv4 address as IPv4-mapped IPv6. */
export function samePeer(c: IceCandidate, from: StunPeer): boolean {
  return c.port === from.port && (c.address === from.address || from.address === `::ffff:${c.address}`);
}

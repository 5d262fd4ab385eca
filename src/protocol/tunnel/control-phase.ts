import { MAX_FRAME_BYTES, PRE_AUTH_MAX_FRAME_BYTES } from './constants.js';
import type { ControlMessageType } from './control-messages.js';
import { TunnelError } from './errors.js';

/**
 * Which control messages one end may receive, and when (STYLE.md 11: a literal union and one
 * transition function). The control connection's owner runs every received message through
 * `receiveTransition` before acting on it, so nothing but HELLO and AUTH is ever parsed into
 * state on an unauthenticated connection, and no message is accepted in the wrong direction.
 */

export type TunnelRole = 'agent' | 'gateway';

/**
 * gateway: await-hello --HELLO--> await-auth --AUTH--> open (the caller verifies the digest before
 * reading further; on failure it sends AUTH_ERROR and closes).
 * agent:   await-challenge --CHALLENGE--> await-auth-result --AUTH_OK--> open, --AUTH_ERROR--> closed.
 * GOAWAY leads to closed from anywhere; nothing is accepted once closed.
 */
export type ControlPhase = 'await-hello' | 'await-auth' | 'await-challenge' | 'await-auth-result' | 'open' | 'closed';

/** Which end sends each message. */
export const SENT_BY: Readonly<Record<ControlMessageType, TunnelRole | 'both'>> = {
  hello: 'agent', challenge: 'gateway', auth: 'agent', 'auth-ok': 'gateway', 'auth-error': 'gateway', goaway: 'both',
  publish: 'agent', 'publish-ok': 'gateway', 'publish-error': 'gateway', unpublish: 'agent', 'service-health': 'agent',
  'stream-open': 'both', 'stream-accept': 'both', 'stream-data': 'both', 'stream-end': 'both', 'stream-reset': 'both',
  'window-update': 'both', datagram: 'both', 'datagram-close': 'both', ping: 'both', pong: 'both',
  offer: 'agent', 'peer-open': 'agent', 'peer-open-ok': 'gateway', 'peer-open-error': 'gateway', 'peer-flow': 'gateway',
  signal: 'both', 'signal-error': 'gateway',
};

const HANDSHAKE: ReadonlySet<ControlMessageType> = new Set(['hello', 'challenge', 'auth', 'auth-ok', 'auth-error']);

export function initialPhase(role: TunnelRole): ControlPhase {
  return role === 'gateway' ? 'await-hello' : 'await-challenge';
}

/** Next phase after receiving `type`; throws TunnelError('unexpected-message') if it is not allowed now. */
export function receiveTransition(role: TunnelRole, phase: ControlPhase, type: ControlMessageType): ControlPhase {
  const sender = SENT_BY[type];
  if (phase !== 'closed' && type === 'goaway') return 'closed';
  if (sender !== undefined && sender !== role) {
    switch (phase) {
      case 'await-hello':
        if (type === 'hello') return 'await-auth';
        break;
      case 'await-auth':
        if (type === 'auth') return 'open';
        break;
      case 'await-challenge':
        if (type === 'challenge') return 'await-auth-result';
        break;
      case 'await-auth-result':
        if (type === 'auth-ok') return 'open';
        if (type === 'auth-error') return 'closed';
        break;
      case 'open':
        if (!HANDSHAKE.has(type)) return 'open';
        break;
      case 'closed':
        break;
    }
  }
  throw new TunnelError('unexpected-message', `${role} received ${type} in phase ${phase}`);
}

/** The frame limit for the reader in this phase: small until authenticated (rathole's bounded pre-auth reads). */
export function maxFrameBytesFor(phase: ControlPhase): number {
  return phase === 'open' ? MAX_FRAME_BYTES : PRE_AUTH_MAX_FRAME_BYTES;
}

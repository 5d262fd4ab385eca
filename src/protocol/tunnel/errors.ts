import { SluiceError } from '../../core/errors.js';

/**
 * Why the tunnel protocol refused something. A closed set, so a gateway or agent can keep one
 * counter per reason (threats-and-tests.md EXP-1, EXP-6). Branch on it, never on the message.
 */
export type TunnelErrorReason =
  /** A control frame's length field is above the limit in force (pre-auth or post-auth). */
  | 'frame-too-large'
  /** A control frame type this protocol version does not define. */
  | 'unknown-type'
  /** Bytes that do not follow the layout: overrun, trailing bytes, a zero length, a bad enum value. */
  | 'malformed'
  /** A name (agent, service, peer) outside 1-64 bytes of `[A-Za-z0-9._-]`, not starting with `.` or `-`. */
  | 'bad-name'
  /** A message that is valid on the wire but not in this direction or at this point of the handshake. */
  | 'unexpected-message'
  /** Challenge-response or gateway proof did not verify. */
  | 'auth-failed'
  /** The TLS session cannot bind the tunnel: not TLS 1.3, or no keying-material exporter. */
  | 'tls-binding'
  /** A key or nonce of the wrong size was handed to the crypto layer (a caller bug). */
  | 'bad-key'
  /** The datagram sequence space (2^48) of a key is used up: the tunnel must reconnect. */
  | 'sequence-exhausted'
  /** A value the encoder cannot represent (too long, out of range): a caller bug, never wire input. */
  | 'bad-value';

/**
 * Every failure of the tunnel protocol layer. Uses the tunnel's one code, SLUICE_ERR_TUNNEL_AUTH:
 * the control channel is authenticated, so a malformed frame from the peer ends the tunnel just as
 * a failed authentication does; `reason` tells them apart.
 */
export class TunnelError extends SluiceError {
  override name = 'TunnelError';
  constructor(
    readonly reason: TunnelErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super('SLUICE_ERR_TUNNEL_AUTH', `tunnel ${reason}: ${message}`, options);
  }
}

export function isTunnelError(err: unknown, reason?: TunnelErrorReason): err is TunnelError {
  return err instanceof TunnelError && (reason === undefined || err.reason === reason);
}

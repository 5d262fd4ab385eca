import { SluiceError } from '../../core/errors.js';

/**
 * Misuse of a udpexposer encoder (a tag or nonce out of range, a payload too large). Decoders
 * never throw: they return a result saying why the bytes were refused.
 *
 * The code is `SLUICE_ERR_USAGE` because the error is always the caller's: bytes that arrive
 * from the network never reach an encoder unchecked.
 */
export class UdpexposerError extends SluiceError {
  override name = 'UdpexposerError';
  constructor(message: string) {
    super('SLUICE_ERR_USAGE', `udpexposer: ${message}`);
  }
}

import { SluiceError } from '../core/errors.js';

/**
 * A TURN server refused a request (code SLUICE_ERR_TURN). `status` is the STUN error code of
 * the response (401 wrong credentials, 437 allocation mismatch, 486 quota, 508 capacity, ...),
 * or undefined when the response itself was unusable (no XOR-RELAYED-ADDRESS, say).
 */
export class TurnError extends SluiceError {
  override name = 'TurnError';
  constructor(
    readonly status: number | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super('SLUICE_ERR_TURN', message, options);
  }
}

/**
 * One error type for the whole project. Branch on `code`, never on the message: the message is
 * for people and may change. Keep `cause` when wrapping so the original errno survives.
 */
export type SluiceErrorCode =
  | 'SLUICE_ERR_CONFIG_INVALID'
  | 'SLUICE_ERR_CONFIG_READ'
  | 'SLUICE_ERR_BIND'
  | 'SLUICE_ERR_OUTPUT'
  | 'SLUICE_ERR_DIAL_TIMEOUT'
  | 'SLUICE_ERR_DIAL_FAILED'
  /** A connect listener's peer agent is not connected to the gateway (PEER_OPEN refused with peer-offline). */
  | 'SLUICE_ERR_PEER_OFFLINE'
  /** A pooled route has no member taking sessions (docs/pools.md). */
  | 'SLUICE_ERR_NO_HEALTHY_UPSTREAM'
  | 'SLUICE_ERR_RESOLVE'
  | 'SLUICE_ERR_DESTINATION_DENIED'
  | 'SLUICE_ERR_ADDRESS_INVALID'
  | 'SLUICE_ERR_ACL_DENIED'
  | 'SLUICE_ERR_LIMIT'
  | 'SLUICE_ERR_PROXY_HEADER_INVALID'
  | 'SLUICE_ERR_STUN_INVALID'
  | 'SLUICE_ERR_STUN_TIMEOUT'
  | 'SLUICE_ERR_TURN'
  | 'SLUICE_ERR_ICE_FAILED'
  | 'SLUICE_ERR_TUNNEL_AUTH'
  | 'SLUICE_ERR_ICE_STATE'
  /** A state machine was asked for a move its transition table does not allow (core/state-machine.ts): a bug, never input. */
  | 'SLUICE_ERR_STATE'
  | 'SLUICE_ERR_ENGINE'
  | 'SLUICE_ERR_CLOSED'
  | 'SLUICE_ERR_CONNTRACK_LINE'
  | 'SLUICE_ERR_CROWDSEC'
  | 'SLUICE_ERR_USAGE';

export class SluiceError extends Error {
  override name = 'SluiceError';
  constructor(
    readonly code: SluiceErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isSluiceError(err: unknown, code?: SluiceErrorCode): err is SluiceError {
  return err instanceof SluiceError && (code === undefined || err.code === code);
}

/** The errno code of a Node system error (`ECONNREFUSED`, ...), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

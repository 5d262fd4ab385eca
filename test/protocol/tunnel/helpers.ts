import assert from 'node:assert/strict';
import { isTunnelError, type TunnelErrorReason } from '../../../src/protocol/tunnel/index.js';

/** Asserts that `fn` throws a TunnelError with code SLUICE_ERR_TUNNEL_AUTH and, if given, this reason. */
export function assertTunnelError(fn: () => unknown, reason?: TunnelErrorReason): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isTunnelError(e), `expected a TunnelError, got ${String(e)}`);
    assert.equal(e.code, 'SLUICE_ERR_TUNNEL_AUTH');
    if (reason) assert.equal(e.reason, reason, e.message);
    return true;
  });
}

/** Runs `fn`; anything thrown other than a TunnelError fails the test. */
export function onlyTunnelErrors(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!isTunnelError(e)) throw e;
  }
}

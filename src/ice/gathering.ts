import { canonicalIp, type Endpoint } from '../core/address.js';
import { SluiceError } from '../core/errors.js';
import {
  MappedAddress, StunMethod, XorMappedAddress, encodeStunMessage, getAttribute, randomTransactionId, stunMessage,
} from '../protocol/stun/index.js';
import type { IceBase } from './checklist.js';
import type { StunPeer, StunRetransmitTiming } from '../turn/stun-transaction.js';

/**
 * Server-reflexive discovery (RFC 8445 §5.1.1.2): a Binding request from a base to a STUN server
 * reports the address the NAT gave that base. Sent through the base's own transaction table,
 * so the mapping found is the very one the checks and the data will use.
 */

/** Gathering gives up on a silent server after ~5.5 s (sends at 0, 0.5, 1.5, 3.5 s), not the RFC's 39.5 s. */
export const GATHER_TIMING: StunRetransmitTiming = Object.freeze({ rtoMs: 500, maxTransmissions: 4, lastWaitFactor: 4 });

export async function queryServerReflexive(base: IceBase, server: StunPeer, signal: AbortSignal, timing: StunRetransmitTiming = GATHER_TIMING): Promise<Endpoint> {
  const request = encodeStunMessage(stunMessage('request', StunMethod.Binding, randomTransactionId()), { fingerprint: true });
  const serverIp = canonicalIp(server.address)?.address;
  const { response } = await base.table.request(request, server, {
    signal,
    timing,
    accept: (res, from) => from.port === server.port && canonicalIp(from.address)?.address === serverIp,
  });
  const mapped = response.cls === 'success' ? (getAttribute(response, XorMappedAddress) ?? getAttribute(response, MappedAddress)) : undefined;
  if (!mapped) throw new SluiceError('SLUICE_ERR_STUN_INVALID', `STUN server ${server.address}:${server.port} gave no mapped address`);
  return mapped;
}

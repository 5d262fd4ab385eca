import { createHmac, timingSafeEqual } from 'node:crypto';
import { BINDING_BYTES, DIGEST_BYTES } from './constants.js';
import { TunnelError } from './errors.js';
import { isValidTunnelName } from './wire.js';

/**
 * The proof that an agent holds a pool's group key (docs/tunnel-protocol.md §4, "Agent pools"):
 *
 *   proof = HMAC-SHA256(group key, "sluice-tunnel-v1 group-join" 0x00 | binding | u8 len | agent | u8 len | group)
 *
 * `binding` is the connection's TLS exporter value (auth.ts), so the key never crosses the wire
 * and a proof seen on one connection is worth nothing on another; the agent and group names keep
 * one agent's proof from serving another agent or another group under the same key.
 */

export interface GroupProofInput {
  /** The group key as written in both configs (UTF-8). Never logged. */
  readonly key: string;
  /** The 32-byte TLS binding of the control connection (exportAuthBinding). */
  readonly binding: Uint8Array;
  readonly agentName: string;
  readonly group: string;
}

const LABEL = Buffer.from('sluice-tunnel-v1 group-join\0', 'latin1');

export function computeGroupProof(input: GroupProofInput): Buffer {
  if (input.binding.length !== BINDING_BYTES) throw new TunnelError('bad-key', `binding must be ${BINDING_BYTES} bytes, got ${input.binding.length}`);
  if (!isValidTunnelName(input.agentName)) throw new TunnelError('bad-name', 'agent name is not a valid tunnel name');
  if (!isValidTunnelName(input.group)) throw new TunnelError('bad-name', 'group name is not a valid tunnel name');
  if (input.key.length === 0) throw new TunnelError('bad-key', 'the group key is empty');
  const agent = Buffer.from(input.agentName, 'latin1');
  const group = Buffer.from(input.group, 'latin1');
  return createHmac('sha256', Buffer.from(input.key, 'utf8'))
    .update(LABEL)
    .update(input.binding)
    .update(Uint8Array.of(agent.length))
    .update(agent)
    .update(Uint8Array.of(group.length))
    .update(group)
    .digest();
}

/** The gateway's check, in constant time; a proof of the wrong length is refused before comparing. */
export function verifyGroupProof(input: GroupProofInput, proof: Uint8Array): boolean {
  if (proof.length !== DIGEST_BYTES) return false;
  return timingSafeEqual(computeGroupProof(input), proof);
}

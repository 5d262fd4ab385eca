import type { Direction } from './key-schedule.js';

/**
 * The 12-byte AEAD nonce of a datagram: u32 direction (1 agent-to-gateway, 2 gateway-to-agent) |
 * u16 zero | u48 sequence. Sequences never repeat under one key (the sealer counts up and stops
 * at 2^48), and each direction has its own key, so a (key, nonce) pair is never used twice
 * (RFC 8439 §4). The direction in the nonce is a second guard: a datagram reflected back to
 * its sender fails even if both keys were ever equal.
 */
export const NONCE_DIRECTION: Readonly<Record<Direction, number>> = { 'agent-to-gateway': 1, 'gateway-to-agent': 2 };

export function newNonceBuffer(direction: Direction): Buffer {
  const n = Buffer.alloc(12);
  n.writeUInt32BE(NONCE_DIRECTION[direction], 0);
  return n;
}

/** Writes `sequence` into a buffer from `newNonceBuffer` (bytes 6-11). */
export function setNonceSequence(nonce: Buffer, sequence: number): void {
  nonce.writeUIntBE(sequence, 6, 6);
}

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AUTH_EXPORTER_LABEL, BINDING_BYTES, DIGEST_BYTES, NONCE_BYTES, TUNNEL_PROTOCOL_VERSION } from './constants.js';
import { TunnelError } from './errors.js';
import { isValidTunnelName } from './wire.js';

/**
 * Token challenge-response, bound to the TLS session (docs/tunnel-protocol.md, "Authentication").
 *
 *   binding = TLS-Exporter("EXPORTER-sluice-tunnel-auth", context = u16 version, 32)   (RFC 8446 §7.5)
 *   digest  = HMAC-SHA256(token, "sluice-tunnel-v1 agent-auth" 0x00 | nonce | binding | u8 len | name)
 *   proof   = HMAC-SHA256(token, "sluice-tunnel-v1 gateway-proof" 0x00 | nonce | binding | u8 len | name)
 *
 * The nonce makes each answer fresh; the binding makes it valid only inside the TLS connection it
 * was computed on, so an answer relayed by a man in the middle (who must terminate TLS on both
 * sides, giving two different exporter values) or replayed on a later connection fails. The two
 * labels keep the agent's digest and the gateway's proof from ever being the same bytes.
 */

/** What a TLS socket offers for binding; node's tls.TLSSocket satisfies it. */
export interface TlsSessionLike {
  exportKeyingMaterial(length: number, label: string, context?: Buffer): Buffer;
  getProtocol(): string | null;
}

const CONTEXT = Buffer.from([TUNNEL_PROTOCOL_VERSION >> 8, TUNNEL_PROTOCOL_VERSION & 0xff]);

/**
 * Exports `length` bytes of keying material under `label`, refusing anything but TLS 1.3: with
 * TLS 1.2 the exporter is only safe with the extended master secret (RFC 7627), which Node does
 * not let us check, so the tunnel requires 1.3 on both ends. `context` defaults to the u16 version.
 */
export function exportTunnelKeyingMaterial(tls: TlsSessionLike, label: string, length: number, context: Buffer = CONTEXT): Buffer {
  const protocol = tls.getProtocol();
  if (protocol !== 'TLSv1.3') throw new TunnelError('tls-binding', `the tunnel requires TLSv1.3, the session is ${protocol ?? 'not established'}`);
  try {
    return tls.exportKeyingMaterial(length, label, context);
  } catch (e) {
    throw new TunnelError('tls-binding', 'cannot export keying material from the TLS session', { cause: e });
  }
}

/** The 32-byte channel binding both ends compute independently from their own view of the TLS session. */
export function exportAuthBinding(tls: TlsSessionLike): Buffer {
  return exportTunnelKeyingMaterial(tls, AUTH_EXPORTER_LABEL, BINDING_BYTES);
}

/** A fresh 32-byte challenge nonce from the CSPRNG. `random` is for tests only. */
export function createChallengeNonce(random: (n: number) => Buffer = randomBytes): Buffer {
  const n = random(NONCE_BYTES);
  if (n.length !== NONCE_BYTES) throw new TunnelError('bad-key', `nonce source returned ${n.length} bytes`);
  return n;
}

export interface AuthInput {
  /** The agent's token, as written in both configs (UTF-8), or raw bytes. Never logged. */
  readonly token: string | Uint8Array;
  /** The gateway's 32-byte challenge nonce. */
  readonly nonce: Uint8Array;
  /** The 32-byte TLS binding from `exportAuthBinding`. */
  readonly binding: Uint8Array;
  /** The agent name from HELLO. */
  readonly agentName: string;
}

const AGENT_LABEL = Buffer.from('sluice-tunnel-v1 agent-auth\0', 'latin1');
const GATEWAY_LABEL = Buffer.from('sluice-tunnel-v1 gateway-proof\0', 'latin1');

function mac(label: Buffer, input: AuthInput): Buffer {
  if (input.nonce.length !== NONCE_BYTES) throw new TunnelError('bad-key', `nonce must be ${NONCE_BYTES} bytes, got ${input.nonce.length}`);
  if (input.binding.length !== BINDING_BYTES) throw new TunnelError('bad-key', `binding must be ${BINDING_BYTES} bytes, got ${input.binding.length}`);
  if (!isValidTunnelName(input.agentName)) throw new TunnelError('bad-name', 'agent name is not a valid tunnel name');
  const key = typeof input.token === 'string' ? Buffer.from(input.token, 'utf8') : input.token;
  if (key.length === 0) throw new TunnelError('bad-key', 'the token is empty');
  const name = Buffer.from(input.agentName, 'latin1');
  return createHmac('sha256', key)
    .update(label)
    .update(input.nonce)
    .update(input.binding)
    .update(Uint8Array.of(name.length))
    .update(name)
    .digest();
}

/** The agent's answer to a CHALLENGE (the AUTH digest). */
export function computeAuthDigest(input: AuthInput): Buffer {
  return mac(AGENT_LABEL, input);
}

/**
 * The gateway's check of an AUTH digest, in constant time (threats-and-tests EXP-3). A digest of the
 * wrong length is refused before comparing, so timingSafeEqual always sees equal lengths.
 */
export function verifyAuthDigest(input: AuthInput, digest: Uint8Array): boolean {
  return constantTimeEqual(computeAuthDigest(input), digest);
}

/** The gateway's proof in AUTH_OK that it holds the same token (mutual authentication). */
export function computeGatewayProof(input: AuthInput): Buffer {
  return mac(GATEWAY_LABEL, input);
}

export function verifyGatewayProof(input: AuthInput, proof: Uint8Array): boolean {
  return constantTimeEqual(computeGatewayProof(input), proof);
}

function constantTimeEqual(expected: Buffer, got: Uint8Array): boolean {
  if (got.length !== DIGEST_BYTES) return false;
  return timingSafeEqual(expected, got);
}

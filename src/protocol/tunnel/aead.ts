import { createCipheriv, createDecipheriv } from 'node:crypto';
import { createRequire } from 'node:module';
import { SluiceError } from '../../core/errors.js';
import { AEAD_ALGORITHM, AEAD_TAG_BYTES } from './constants.js';

/**
 * ChaCha20-Poly1305 (RFC 8439, IETF 96-bit nonce, 16-byte tag) for the tunnel datagrams, from one
 * of two well-kept implementations; both give the same bytes (the golden and property tests run
 * both):
 *
 * - `sodium`: libsodium through sodium-native (an optional dependency with prebuilt binaries).
 *   One call per datagram over caller buffers: 0.6 µs for 64 bytes on this machine.
 * - `node`: node:crypto, which has no one-shot AEAD and no reusable cipher context, so every
 *   datagram makes a cipher object: 4.8 µs for 64 bytes (7.8 times slower; 4.2 at 1400 bytes).
 *
 * `sodium` is used when it loads; the process may choose node:crypto with `preferAead` (main.ts
 * does for SLUICE_AEAD=node). This module reads no environment.
 */
export interface Aead {
  readonly name: 'sodium' | 'node';
  /**
   * Encrypts `out[at, at + plainLength)` in place and writes the tag right after it. `aad` is
   * authenticated, not encrypted.
   */
  sealInPlace(out: Buffer, at: number, plainLength: number, aad: Buffer, nonce: Buffer, key: Buffer): void;
  /** The plaintext of `cipherAndTag` (a new Buffer), or undefined when the tag does not verify. */
  open(cipherAndTag: Buffer, aad: Buffer, nonce: Buffer, key: Buffer): Buffer | undefined;
}

export const nodeAead: Aead = {
  name: 'node',
  sealInPlace(out, at, plainLength, aad, nonce, key) {
    const cipher = createCipheriv(AEAD_ALGORITHM, key, nonce, { authTagLength: AEAD_TAG_BYTES });
    cipher.setAAD(aad, { plaintextLength: plainLength });
    const end = at + plainLength;
    if (plainLength > 0) cipher.update(out.subarray(at, end)).copy(out, at);
    cipher.final();
    cipher.getAuthTag().copy(out, end);
  },
  open(cipherAndTag, aad, nonce, key) {
    const end = cipherAndTag.length - AEAD_TAG_BYTES;
    if (end < 0) return undefined;
    try {
      const d = createDecipheriv(AEAD_ALGORITHM, key, nonce, { authTagLength: AEAD_TAG_BYTES });
      d.setAAD(aad, { plaintextLength: end });
      d.setAuthTag(cipherAndTag.subarray(end));
      const plain = d.update(cipherAndTag.subarray(0, end));
      d.final();
      return plain;
    } catch {
      return undefined;
    }
  },
};

interface Sodium {
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(c: Buffer, mac: Buffer, m: Buffer, ad: Buffer | null, nsec: null, npub: Buffer, k: Buffer): number;
  crypto_aead_chacha20poly1305_ietf_decrypt_detached(m: Buffer, nsec: null, c: Buffer, mac: Buffer, ad: Buffer | null, npub: Buffer, k: Buffer): void;
}

function sodiumAead(s: Sodium): Aead {
  return {
    name: 'sodium',
    sealInPlace(out, at, plainLength, aad, nonce, key) {
      const plain = out.subarray(at, at + plainLength);
      // libsodium's stream cipher works in place (c == m).
      s.crypto_aead_chacha20poly1305_ietf_encrypt_detached(plain, out.subarray(at + plainLength, at + plainLength + AEAD_TAG_BYTES), plain, aad, null, nonce, key);
    },
    open(cipherAndTag, aad, nonce, key) {
      const end = cipherAndTag.length - AEAD_TAG_BYTES;
      if (end < 0) return undefined;
      const plain = Buffer.allocUnsafe(end);
      try {
        s.crypto_aead_chacha20poly1305_ietf_decrypt_detached(plain, null, cipherAndTag.subarray(0, end), cipherAndTag.subarray(end), aad, nonce, key);
      } catch {
        return undefined;
      }
      return plain;
    },
  };
}

function loadSodium(): Aead | undefined {
  try {
    return sodiumAead(createRequire(import.meta.url)('sodium-native') as Sodium);
  } catch {
    return undefined;
  }
}

/** Every implementation this process can use, fastest first (tests run them all). */
export const AEADS: readonly Aead[] = [loadSodium(), nodeAead].filter((a): a is Aead => a !== undefined);

/** The implementation sealers and openers use unless told otherwise: the fastest, or the one `preferAead` chose. */
export let defaultAead: Aead = AEADS[0]!;

/**
 * Makes `name` the implementation of the sealers and openers built from now on without an explicit
 * `aead` option. A process-wide choice, made once by the process before it builds anything (main.ts
 * for SLUICE_AEAD, a benchmark for its column). Throws SluiceError `SLUICE_ERR_CONFIG_INVALID`
 * when `name` is not available here (sodium-native did not load).
 */
export function preferAead(name: Aead['name']): Aead {
  const found = AEADS.find((a) => a.name === name);
  if (!found) throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `the ${name} AEAD is not available in this process (available: ${AEADS.map((a) => a.name).join(', ')})`);
  defaultAead = found;
  return found;
}

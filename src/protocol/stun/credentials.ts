import { createHash } from 'node:crypto';
import { PasswordAlgorithm } from './constants.js';
import { stunInvalid } from './header.js';

/**
 * Keys for MESSAGE-INTEGRITY(-SHA256) (RFC 8489 §9). Strings go in already prepared: RFC 8489
 * wants OpaqueString (RFC 8265) on realm and password, RFC 5389 wanted SASLprep, and Node has
 * neither. For ASCII credentials (ICE ufrag/pwd are ASCII by definition; Sluice's own TURN users
 * should be) every profile is the identity. `prepareCredential` covers the common non-ASCII
 * cases; see its comment for what it does not do.
 */

export type KeyAlgorithm = 'md5' | 'sha256';

/** Short-term credential key: the password's UTF-8 bytes (RFC 8489 §9.1.1). ICE uses the remote pwd. */
export function shortTermKey(password: string): Buffer {
  return Buffer.from(password, 'utf8');
}

/**
 * Long-term credential key (RFC 8489 §9.2.2): MD5 or SHA-256 of `username ":" realm ":" password`.
 * MD5 is what RFC 5389 servers (coturn 4.6) use; SHA-256 only after the server offered it in
 * PASSWORD-ALGORITHMS. MESSAGE-INTEGRITY-SHA256 takes the same key as MESSAGE-INTEGRITY.
 */
export function longTermKey(username: string, realm: string, password: string, algorithm: KeyAlgorithm = 'md5'): Buffer {
  return createHash(algorithm).update(`${username}:${realm}:${password}`, 'utf8').digest();
}

/** The key algorithm named by a PASSWORD-ALGORITHM number, or undefined for one we do not know. */
export function keyAlgorithmOf(passwordAlgorithm: number): KeyAlgorithm | undefined {
  if (passwordAlgorithm === PasswordAlgorithm.Md5) return 'md5';
  if (passwordAlgorithm === PasswordAlgorithm.Sha256) return 'sha256';
  return undefined;
}

/** USERHASH value (RFC 8489 §14.4): SHA-256 of `username ":" realm`. */
export function userHash(username: string, realm: string): Buffer {
  return createHash('sha256').update(`${username}:${realm}`, 'utf8').digest();
}

// RFC 3454 B.1 (commonly mapped to nothing) and C.1.2 (non-ASCII spaces).
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
// C.2 controls, C.3 private use, C.4 non-characters (BMP), C.5 surrogates, C.8 directionality marks.
// eslint-disable-next-line no-control-regex
const PROHIBITED = /[\u0000-\u001F\u007F-\u009F\u06DD\u070F\u180E\u200E\u200F\u202A-\u202E\u2060-\u2063\u206A-\u206F\uD800-\uDFFF\uE000-\uF8FF\uFDD0-\uFDEF\uFFF9-\uFFFF]/u;

/**
 * The SASLprep (RFC 4013) mapping as far as RFC 5769's vectors and ordinary passwords need it:
 * maps B.1 to nothing and non-ASCII spaces to U+0020, applies NFKC, and rejects controls,
 * private-use and surrogate code points with SLUICE_ERR_STUN_INVALID. It does not run the
 * bidirectional check or reject unassigned code points. "The\u00ADM\u00AAtr\u2168" becomes
 * "TheMatrIX". Pure ASCII input comes back unchanged.
 */
export function prepareCredential(input: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x20-\x7e]*$/.test(input)) return input;
  const out = input.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
  if (PROHIBITED.test(out)) throw stunInvalid('credential contains a prohibited code point');
  return out;
}

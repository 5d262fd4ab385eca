import { randomBytes } from 'node:crypto';

/**
 * ICE credentials (RFC 8445 §5.3): a username fragment of at least 4 and a password of at least
 * 22 ice-chars (ALPHA / DIGIT / "+" / "/"), and the 64-bit tie-breaker for role conflicts.
 * Random from the CSPRNG: the password keys MESSAGE-INTEGRITY of every check.
 */

export interface IceCredentials {
  readonly ufrag: string;
  readonly pwd: string;
}

/** base64 without padding is exactly ice-char. */
function iceChars(n: number): string {
  return randomBytes(Math.ceil((n * 3) / 4) + 1).toString('base64').replace(/=/g, '').slice(0, n);
}

/** 8-character ufrag (48 bits) and 24-character password (144 bits). */
export function randomCredentials(): IceCredentials {
  return { ufrag: iceChars(8), pwd: iceChars(24) };
}

export function randomTieBreaker(): bigint {
  return randomBytes(8).readBigUInt64BE(0);
}

/** A message when `c` breaks RFC 8445 §5.3 (length, characters), else undefined. */
export function credentialsProblem(c: IceCredentials): string | undefined {
  if (!/^[A-Za-z0-9+/]{4,256}$/.test(c.ufrag)) return 'ufrag must be 4-256 ice-chars';
  if (!/^[A-Za-z0-9+/]{22,256}$/.test(c.pwd)) return 'pwd must be 22-256 ice-chars';
  return undefined;
}

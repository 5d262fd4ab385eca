/**
 * udpexposer 0.3.0 wire constants (field/protocols.md §1, vi/udpexposer @ a12fb1c).
 */

/** Every frame between server and client starts with a u16 big-endian connectee tag. */
export const TAG_BYTES = 2;

/** udpexposer reads into a 2048-byte buffer on both sides. */
export const RECEIVE_BUFFER_BYTES = 2048;

/**
 * Largest payload a udpexposer peer can carry without cutting it short: the server reads a
 * connectee datagram into buf[2..2048], and a client worker reads the real server's reply the
 * same way. Longer payloads would be truncated silently by a real udpexposer peer.
 */
export const MAX_PAYLOAD_BYTES = RECEIVE_BUFFER_BYTES - TAG_BYTES;

/** Tags count from 1 (the counter is incremented before use) and wrap to 0 after this. */
export const MAX_TAG = 0xffff;

/** Base64url of `{"alg":"HS256"}` followed by the dot: how every password-mode token begins. */
export const TOKEN_PREFIX = 'eyJhbGciOiJIUzI1NiJ9.';
export const TOKEN_PREFIX_BYTES: Buffer = Buffer.from(TOKEN_PREFIX, 'ascii');
export const TOKEN_HEADER_B64 = 'eyJhbGciOiJIUzI1NiJ9';

/** u64::MAX: nonce value that asks a server for its statistics block. */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
export const STATS_NONCE = U64_MAX;

/** Server accepts an echoed nonce whose time is at most this far in the past (seconds). */
export const NONCE_PAST_SECONDS = 10;
/** ... or at most this far in the future (seconds). */
export const NONCE_FUTURE_SECONDS = 1;

/** Argon2i parameters of the password key (main.rs `SecureKeepalives::new`). */
export const KDF = {
  salt: 'udpexposer',
  memoryKiB: 256,
  iterations: 2,
  parallelism: 2,
  hashLength: 32,
} as const;

/** udpexposer's CLI defaults. */
export const DEFAULT_MAX_CLIENTS = 4;
export const DEFAULT_PING_INTERVAL_MS = 25_000;

import { createHmac } from 'node:crypto';
import { inspect } from 'node:util';
import { argon2i } from 'hash-wasm';
import { KDF } from './constants.js';
import { UdpexposerError } from './errors.js';

/**
 * The HMAC-SHA256 key of udpexposer's password mode: Argon2i v0x13 of the password's UTF-8
 * bytes, salt "udpexposer", m = 256 KiB, t = 2, p = 2, 32 bytes out (protocols.md §1.5).
 * Argon2i comes from hash-wasm (WebAssembly; no native build) and HMAC from node:crypto.
 *
 * The bytes stay private: the key prints as `[UdpexposerKey]` in logs, JSON and inspect(), so a
 * key that ends up in a record does not leak the secret (threats-and-tests EXP-4).
 */
export class UdpexposerKey {
  readonly #bytes: Buffer;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** Derives the key. Costs one Argon2i run (tens of ms): do it once at start, never per datagram. */
  static async fromPassword(password: string): Promise<UdpexposerKey> {
    const bytes = await argon2i({
      password: Buffer.from(password, 'utf8'),
      salt: Buffer.from(KDF.salt, 'ascii'),
      iterations: KDF.iterations,
      parallelism: KDF.parallelism,
      memorySize: KDF.memoryKiB,
      hashLength: KDF.hashLength,
      outputType: 'binary',
    });
    return new UdpexposerKey(Buffer.from(bytes));
  }

  /** A key from its 32 raw bytes (tests, or a key stored elsewhere). The bytes are copied. */
  static fromBytes(bytes: Uint8Array): UdpexposerKey {
    if (bytes.length !== KDF.hashLength) throw new UdpexposerError(`key must be ${KDF.hashLength} bytes, got ${bytes.length}`);
    return new UdpexposerKey(Buffer.from(bytes));
  }

  /** HMAC-SHA256 of `data` under this key (32 bytes). */
  mac(data: string | Uint8Array): Buffer {
    return createHmac('sha256', this.#bytes).update(data).digest();
  }

  /** The raw bytes, for comparing against published vectors. */
  exportBytes(): Buffer {
    return Buffer.from(this.#bytes);
  }

  toString(): string {
    return '[UdpexposerKey]';
  }

  toJSON(): string {
    return '[UdpexposerKey]';
  }

  [inspect.custom](): string {
    return '[UdpexposerKey]';
  }
}

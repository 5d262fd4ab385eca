import { canonicalIp, formatV6, ipv6Bytes, type Endpoint } from '../../core/address.js';
import { MAX_NAME_BYTES, MAX_REASON_BYTES } from './constants.js';
import { TunnelError } from './errors.js';

/**
 * Field codecs shared by the control frames and the datagram origin block: a bounds-checked reader
 * and an exact-size writer. Every overrun is a TunnelError('malformed'), never a RangeError.
 */

const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Agent, service and peer names: 1-64 ASCII bytes of letters, digits, `.`, `_`, `-`, not starting with `.` or `-`. */
export function isValidTunnelName(name: string): boolean {
  return name.length >= 1 && name.length <= MAX_NAME_BYTES && NAME.test(name);
}

export function malformed(message: string): TunnelError {
  return new TunnelError('malformed', message);
}

/** Reads fields from `buf[offset, end)`. Views returned by `bytes`/`rest` share memory with `buf`. */
export class WireReader {
  #pos: number;
  constructor(
    private readonly buf: Buffer,
    offset: number,
    private readonly end: number,
    private readonly what: string,
  ) {
    this.#pos = offset;
  }

  get remaining(): number {
    return this.end - this.#pos;
  }

  #need(n: number): number {
    const at = this.#pos;
    if (this.end - at < n) throw malformed(`${this.what}: needs ${n} more bytes at offset ${at}, has ${this.end - at}`);
    this.#pos = at + n;
    return at;
  }

  u8(): number {
    return this.buf[this.#need(1)]!;
  }
  u16(): number {
    return this.buf.readUInt16BE(this.#need(2));
  }
  u32(): number {
    return this.buf.readUInt32BE(this.#need(4));
  }
  bytes(n: number): Buffer {
    const at = this.#need(n);
    return this.buf.subarray(at, at + n);
  }
  /** Everything left; the reader is then done. */
  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** u8 length | ASCII name, validated. */
  name(): string {
    const n = this.u8();
    const text = this.bytes(n).toString('latin1');
    if (!isValidTunnelName(text)) throw new TunnelError('bad-name', `${this.what}: invalid name of ${n} bytes`);
    return text;
  }

  /** u16 length | UTF-8 text of at most MAX_REASON_BYTES; invalid UTF-8 is malformed (one canonical form). */
  reason(): string {
    const n = this.u16();
    if (n > MAX_REASON_BYTES) throw malformed(`${this.what}: reason of ${n} bytes exceeds ${MAX_REASON_BYTES}`);
    const b = this.bytes(n);
    try {
      return UTF8.decode(b);
    } catch {
      throw malformed(`${this.what}: reason is not valid UTF-8`);
    }
  }

  /** u8 family (4 or 6) | u16 port | 4 or 16 address bytes. */
  endpoint(): Endpoint {
    const family = this.u8();
    const port = this.u16();
    if (family === 4) {
      const b = this.bytes(4);
      return { address: `${b[0]}.${b[1]}.${b[2]}.${b[3]}`, port, family: 4 };
    }
    if (family === 6) {
      const ip = canonicalIp(formatV6(this.bytes(16)))!;
      return { address: ip.address, port, family: ip.family };
    }
    throw malformed(`${this.what}: address family ${family} is neither 4 nor 6`);
  }

  /** Fails unless every byte was consumed: trailing bytes are malformed, not ignored. */
  done(): void {
    if (this.#pos !== this.end) throw malformed(`${this.what}: ${this.end - this.#pos} trailing bytes`);
  }
}

/** Writes fields into a buffer that the caller sized exactly with the `*Bytes` helpers. */
export class WireWriter {
  #pos: number;
  constructor(
    readonly buf: Buffer,
    offset = 0,
  ) {
    this.#pos = offset;
  }
  get position(): number {
    return this.#pos;
  }
  u8(v: number): this {
    this.buf[this.#pos++] = v;
    return this;
  }
  u16(v: number): this {
    this.#pos = this.buf.writeUInt16BE(v, this.#pos);
    return this;
  }
  u32(v: number): this {
    this.#pos = this.buf.writeUInt32BE(v, this.#pos);
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.#pos);
    this.#pos += b.length;
    return this;
  }
  /** Writes a name checked with `nameBytes` beforehand. */
  name(name: string): this {
    this.u8(name.length);
    this.#pos += this.buf.write(name, this.#pos, 'latin1');
    return this;
  }
  reason(encoded: Buffer): this {
    return this.u16(encoded.length).bytes(encoded);
  }
  endpoint(ep: EncodedEndpoint): this {
    return this.u8(ep.family).u16(ep.port).bytes(ep.bytes);
  }
}

export interface EncodedEndpoint {
  readonly family: 4 | 6;
  readonly port: number;
  readonly bytes: Uint8Array;
}

/** Validates and converts an endpoint for writing; the family comes from the canonical address. */
export function encodeEndpoint(ep: Endpoint, what: string): EncodedEndpoint {
  const ip = canonicalIp(ep.address);
  if (!ip) throw new TunnelError('bad-value', `${what}: "${ep.address}" is not an IP address`);
  checkUint(ep.port, 0xffff, `${what} port`);
  if (ip.family === 4) return { family: 4, port: ep.port, bytes: Uint8Array.from(ip.address.split('.').map(Number)) };
  return { family: 6, port: ep.port, bytes: ipv6Bytes(ip.address)! };
}

export function endpointBytes(ep: EncodedEndpoint): number {
  return 3 + ep.bytes.length;
}

export function nameBytes(name: string, what: string): number {
  if (!isValidTunnelName(name)) throw new TunnelError('bad-name', `${what}: invalid name "${name.slice(0, 80)}"`);
  return 1 + name.length;
}

/** UTF-8 bytes of a reason text, cut at MAX_REASON_BYTES on a character boundary. */
export function encodeReason(text: string): Buffer {
  const b = Buffer.from(text, 'utf8');
  if (b.length <= MAX_REASON_BYTES) return b;
  let end = MAX_REASON_BYTES;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

export function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new TunnelError('bad-value', `${what} ${v} is not an integer in 0-${max}`);
}

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Builds ClientHellos for tests: the handshake message, then records of chosen sizes. */
export interface HelloParts {
  readonly serverName?: string;
  readonly alpn?: readonly string[];
  /** Extra extensions, [type, data], in order (GREASE types, a big key share, duplicates...). */
  readonly extensions?: readonly (readonly [number, Buffer])[];
  /** Omit the extensions block entirely (TLS 1.2 allows it). */
  readonly noExtensions?: boolean;
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);

export function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data]);
}

export function serverNameExtension(name: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const entry = Buffer.concat([Buffer.from([0]), u16(n.length), n]);
  return extension(0, Buffer.concat([u16(entry.length), entry]));
}

export function alpnExtension(protocols: readonly string[]): Buffer {
  const list = Buffer.concat(protocols.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])));
  return extension(16, Buffer.concat([u16(list.length), list]));
}

/** The handshake message (type 1, 24-bit length, body). */
export function clientHelloMessage(parts: HelloParts): Buffer {
  const exts: Buffer[] = [];
  if (parts.serverName !== undefined) exts.push(serverNameExtension(parts.serverName));
  if (parts.alpn !== undefined) exts.push(alpnExtension(parts.alpn));
  for (const [t, d] of parts.extensions ?? []) exts.push(extension(t, d));
  const extBlock = Buffer.concat(exts);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7), // random
    Buffer.from([0]), // session id
    u16(4), Buffer.from([0x13, 0x01, 0x0a, 0x0a]), // TLS_AES_128_GCM_SHA256 and a GREASE suite
    Buffer.from([1, 0]), // null compression
    parts.noExtensions ? Buffer.alloc(0) : Buffer.concat([u16(extBlock.length), extBlock]),
  ]);
  return Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
}

/** Cuts a handshake message into handshake records of at most `maxFragment` bytes each. */
export function inRecords(message: Buffer, fragmentSizes: readonly number[] = [16_384]): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < message.length; i++) {
    const size = Math.max(1, Math.min(fragmentSizes[i % fragmentSizes.length]!, 16_384, message.length - at));
    out.push(Buffer.from([22, 3, i === 0 ? 1 : 3, size >> 8, size & 0xff]), message.subarray(at, at + size));
    at += size;
  }
  return Buffer.concat(out);
}

/** The hex fixtures recorded by scripts/capture-client-hellos.mjs, by file name without `.hex`. */
export function recordedHellos(): Map<string, Buffer> {
  const dir = fileURLToPath(new URL('../../../../test/protocol/tls/fixtures/', import.meta.url));
  const out = new Map<string, Buffer>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.hex'))) {
    const hex = readFileSync(dir + f, 'utf8').split('\n').filter((l) => !l.startsWith('#')).join('').trim();
    out.set(f.slice(0, -4), Buffer.from(hex, 'hex'));
  }
  return out;
}

import { createCipheriv } from 'node:crypto';
import { clientInitialKeys, quicVersionParams } from '../../../src/protocol/quic/initial-keys.js';
import { encodeVarint } from '../../../src/protocol/quic/varint.js';

/** Builds protected client Initial packets for tests, the way a QUIC client does (RFC 9001 section 5). */
export interface InitialParts {
  readonly version: number;
  readonly dcid: Buffer;
  readonly scid?: Buffer;
  readonly packetNumber: number;
  /** Packet number length in bytes, 1 to 4 (default 4). */
  readonly pnLength?: number;
  readonly token?: Buffer;
  /** The plaintext frames. */
  readonly payload: Buffer;
  /** Encode the Length field on this many bytes (2 by default, as the RFC example). */
  readonly lengthBytes?: 2 | 4;
}

export function sealInitial(p: InitialParts): Buffer {
  const params = quicVersionParams(p.version);
  if (!params) throw new Error(`no params for version ${p.version}`);
  const keys = clientInitialKeys(params, p.dcid);
  const pnLen = p.pnLength ?? 4;
  const scid = p.scid ?? Buffer.alloc(0);
  const token = p.token ?? Buffer.alloc(0);
  const length = pnLen + p.payload.length + 16;
  const lenField = p.lengthBytes === 4 ? Buffer.from([0x80, 0, length >> 8, length & 0xff]) : Buffer.from([0x40 | (length >> 8), length & 0xff]);
  const pn = Buffer.alloc(pnLen);
  pn.writeUIntBE(p.packetNumber, 0, pnLen);
  const header = Buffer.concat([
    Buffer.from([0xc0 | (params.initialType << 4) | (pnLen - 1)]),
    u32(p.version),
    Buffer.from([p.dcid.length]),
    p.dcid,
    Buffer.from([scid.length]),
    scid,
    encodeVarint(token.length),
    token,
    lenField,
    pn,
  ]);
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < pnLen; i++) nonce[11 - i]! ^= pn[pnLen - 1 - i]!;
  const gcm = createCipheriv('aes-128-gcm', keys.key, nonce);
  gcm.setAAD(header);
  const sealed = Buffer.concat([gcm.update(p.payload), gcm.final(), gcm.getAuthTag()]);
  const pnOffset = header.length - pnLen;
  const sample = sealed.subarray(4 - pnLen, 4 - pnLen + 16);
  const ecb = createCipheriv('aes-128-ecb', keys.hp, null);
  ecb.setAutoPadding(false);
  const mask = ecb.update(sample);
  header[0]! ^= mask[0]! & 0x0f;
  for (let i = 0; i < pnLen; i++) header[pnOffset + i]! ^= mask[1 + i]!;
  return Buffer.concat([header, sealed]);
}

export function cryptoFrame(offset: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x06]), encodeVarint(offset), encodeVarint(data.length), data]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** The handshake messages inside TLS records (drops the 5-byte record headers). */
export function stripRecords(wire: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  while (at + 5 <= wire.length) {
    const len = wire.readUInt16BE(at + 3);
    out.push(wire.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  return Buffer.concat(out);
}

import { ProxyHeaderError } from './errors.js';
import {
  AUTHORITY_MAX_BYTES,
  PP2_TYPE,
  UNIQUE_ID_MAX_BYTES,
  type ProxyHeaderV2,
  type ProxyTlv,
  type SslTlv,
} from './types.js';

/** Result of reading a TLV area. `crcValueAt` is the absolute offset of the CRC32C value, or -1. */
export interface TlvArea {
  readonly tlvs: ProxyTlv[];
  readonly crcValueAt: number;
}

const SSL_FIXED_BYTES = 5; // client (u8) + verify (u32 BE); the struct is packed

/**
 * Reads the TLVs in `buf[start, end)`. With `validate`, anything but an exact parse, and any known
 * TLV that breaks its rule, throws 'tlv-malformed' (HAProxy closes the connection in those cases:
 * reg-tests proxy_protocol_tlv_validation.vtc c3/c4). Without it, reading stops at the first TLV
 * that does not fit, and broken known TLVs are kept raw.
 */
export function readTlvArea(buf: Buffer, start: number, end: number, validate: boolean): TlvArea {
  const tlvs: ProxyTlv[] = [];
  let crcValueAt = -1;
  let off = start;
  while (off < end) {
    if (off + 3 > end) {
      if (validate) throw malformed(`${end - off} stray byte(s) after the last TLV`, off);
      break;
    }
    const type = buf[off]!;
    const len = (buf[off + 1]! << 8) | buf[off + 2]!;
    const valueAt = off + 3;
    if (valueAt + len > end) {
      if (validate) throw malformed(`TLV 0x${hex2(type)} of ${len} bytes runs past the header end`, off);
      break;
    }
    const value = buf.subarray(valueAt, valueAt + len);
    let ssl: SslTlv | undefined;
    switch (type) {
      case PP2_TYPE.CRC32C:
        if (len !== 4) {
          if (validate) throw malformed(`CRC32C TLV must be 4 bytes, got ${len}`, off);
        } else if (crcValueAt >= 0) {
          if (validate) throw malformed('more than one CRC32C TLV', off);
        } else {
          crcValueAt = valueAt;
        }
        break;
      case PP2_TYPE.UNIQUE_ID:
        if (validate && len > UNIQUE_ID_MAX_BYTES) throw malformed(`UNIQUE_ID of ${len} bytes (max ${UNIQUE_ID_MAX_BYTES})`, off);
        break;
      case PP2_TYPE.AUTHORITY:
        if (validate && len > AUTHORITY_MAX_BYTES) throw malformed(`AUTHORITY of ${len} bytes (max ${AUTHORITY_MAX_BYTES})`, off);
        break;
      case PP2_TYPE.SSL:
        ssl = readSsl(buf, valueAt, valueAt + len, validate);
        break;
    }
    tlvs.push(ssl === undefined ? { type, value } : { type, value, ssl });
    off = valueAt + len;
  }
  return { tlvs, crcValueAt };
}

function readSsl(buf: Buffer, start: number, end: number, validate: boolean): SslTlv | undefined {
  if (end - start < SSL_FIXED_BYTES) {
    if (validate) throw malformed(`SSL TLV of ${end - start} bytes (min ${SSL_FIXED_BYTES})`, start - 3);
    return undefined;
  }
  const client = buf[start]!;
  const verify = buf.readUInt32BE(start + 1);
  const subStart = start + SSL_FIXED_BYTES;
  const subTlvs: ProxyTlv[] = [];
  let off = subStart;
  while (off < end) {
    const len = off + 3 <= end ? (buf[off + 1]! << 8) | buf[off + 2]! : -1;
    if (len < 0 || off + 3 + len > end) {
      if (validate) throw malformed('SSL sub-TLVs do not fill the SSL TLV exactly', off);
      return undefined;
    }
    subTlvs.push({ type: buf[off]!, value: buf.subarray(off + 3, off + 3 + len) });
    off += 3 + len;
  }
  return { client, verify, subTlvs };
}

function malformed(message: string, offset: number): ProxyHeaderError {
  return new ProxyHeaderError('tlv-malformed', message, offset);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** The first TLV of `type` (top level), or undefined. */
export function findTlv(header: Pick<ProxyHeaderV2, 'tlvs'>, type: number): ProxyTlv | undefined {
  for (const t of header.tlvs) if (t.type === type) return t;
  return undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A TLV value as text (AUTHORITY, ALPN, NETNS, SSL sub-TLVs), or undefined when it is not valid
 * UTF-8 or contains a NUL: like HAProxy (reg-test proxy_protocol_tlv_embedded_nul.vtc), refuse to
 * treat such a value as text, because a NUL would truncate it in C consumers.
 */
export function tlvText(tlv: ProxyTlv | undefined): string | undefined {
  if (tlv === undefined || tlv.value.includes(0)) return undefined;
  try {
    return utf8.decode(tlv.value);
  } catch {
    return undefined;
  }
}

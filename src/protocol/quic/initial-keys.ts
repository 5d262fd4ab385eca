/**
 * The client's Initial packet protection keys, which anyone who sees the first packet can derive
 * from its Destination Connection ID (RFC 9001 section 5.2, RFC 9369 section 3.3): QUIC v1 and v2
 * differ in the salt and the HKDF labels. Built on node:crypto (HMAC-SHA256 for HKDF, AES).
 */
import { createHmac } from 'node:crypto';

export const QUIC_V1 = 0x00000001;
export const QUIC_V2 = 0x6b3343cf;

export interface QuicVersionParams {
  readonly version: number;
  readonly salt: Buffer;
  /** HKDF labels of the packet protection key, IV and header protection key. */
  readonly labels: { readonly key: string; readonly iv: string; readonly hp: string };
  /** The two long-header type bits (byte 0, bits 4-5) of an Initial packet. */
  readonly initialType: number;
}

const V1: QuicVersionParams = {
  version: QUIC_V1,
  salt: Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex'),
  labels: { key: 'quic key', iv: 'quic iv', hp: 'quic hp' },
  initialType: 0b00,
};
const V2: QuicVersionParams = {
  version: QUIC_V2,
  salt: Buffer.from('0dede3def700a6db819381be6e269dcbf9bd2ed9', 'hex'),
  labels: { key: 'quicv2 key', iv: 'quicv2 iv', hp: 'quicv2 hp' },
  initialType: 0b01,
};

/** The versions whose Initial packets this codec opens; undefined for any other. */
export function quicVersionParams(version: number): QuicVersionParams | undefined {
  return version === QUIC_V1 ? V1 : version === QUIC_V2 ? V2 : undefined;
}

export interface InitialKeys {
  /** AEAD_AES_128_GCM key. */
  readonly key: Buffer;
  readonly iv: Buffer;
  /** AES-128 header protection key. */
  readonly hp: Buffer;
}

/** HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context, for outputs of at most one SHA-256 block. */
export function hkdfExpandLabel(secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.alloc(2 + 1 + full.length + 1);
  info.writeUInt16BE(length, 0);
  info[2] = full.length;
  full.copy(info, 3);
  info[3 + full.length] = 0; // empty context
  // HKDF-Expand (RFC 5869): T(1) = HMAC(PRK, info | 0x01); one block covers length <= 32.
  return createHmac('sha256', secret).update(info).update(Buffer.of(1)).digest().subarray(0, length);
}

/** client_initial_secret = HKDF-Expand-Label(HKDF-Extract(salt, DCID), "client in", "", 32). */
export function clientInitialSecret(params: QuicVersionParams, dcid: Buffer): Buffer {
  const initialSecret = createHmac('sha256', params.salt).update(dcid).digest();
  return hkdfExpandLabel(initialSecret, 'client in', 32);
}

export function keysFromSecret(params: QuicVersionParams, secret: Buffer): InitialKeys {
  return {
    key: hkdfExpandLabel(secret, params.labels.key, 16),
    iv: hkdfExpandLabel(secret, params.labels.iv, 12),
    hp: hkdfExpandLabel(secret, params.labels.hp, 16),
  };
}

export function clientInitialKeys(params: QuicVersionParams, dcid: Buffer): InitialKeys {
  return keysFromSecret(params, clientInitialSecret(params, dcid));
}

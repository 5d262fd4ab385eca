import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UdpexposerKey } from '../../../src/protocol/udpexposer/index.js';

/** Compiled tests live in dist/test/protocol/udpexposer; shared/ sits beside the checkout. */
const vectors = fileURLToPath(new URL('../../../../../shared/vectors/udpexposer/', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
export const corpusDir = `${repoRoot}test/protocol/udpexposer/corpus/`;

export interface TokenVector { claims_json: string; token?: string; note: string }

export interface WireVectors {
  no_password: {
    keepalive_client_to_server_hex: string;
    connectee_to_server_payload_ascii: string;
    server_to_client_hex: string;
    client_to_server_hex: string;
    server_to_connectee_ascii: string;
    client_to_server_tag_only_hex: string;
    server_to_connectee_len: number;
  };
  password_mode: {
    password: string;
    hmac_key_hex: string;
    jwt_header_b64url: string;
    jwt_header_json: string;
    initial_request: TokenVector;
    retry_reply: TokenVector;
    registered_reply: TokenVector;
    echo_request_example: TokenVector;
    stats_request: TokenVector;
  };
}

export const wire = JSON.parse(readFileSync(`${vectors}wire.json`, 'utf8')) as WireVectors;

/** The vector key from its published bytes (no Argon2 run): most tests use this one. */
export const vectorKey = UdpexposerKey.fromBytes(Buffer.from(wire.password_mode.hmac_key_hex, 'hex'));

/**
 * Numbers of the agent-gateway tunnel protocol, version 1 (docs/tunnel-protocol.md). Everything on
 * the wire is big-endian.
 */

export const TUNNEL_PROTOCOL_VERSION = 1;

/** ALPN protocol id for the control TLS connection; both ends require it, so a stray client fails in the handshake. */
export const TUNNEL_ALPN = 'sluice-tunnel/1';
/**
 * The same protocol, plus sealed data connections for TCP streams (docs/tunnel-protocol.md, "Data
 * connections"). An end that offers both lets the gateway's order pick: a gateway of this version
 * prefers it, an earlier one (and an agent with data connections off) keeps TUNNEL_ALPN. `+data2`:
 * the agent writes READY before a stream's bytes (data-ready.ts), and a data connection whose
 * stream ended with END both ways carries the next one after a new hello ("Reuse"); an end that
 * only knows `+data` (neither) agrees on plain TUNNEL_ALPN with this one.
 */
export const TUNNEL_ALPN_DATA = 'sluice-tunnel/1+data2';
/**
 * `+data2` plus trunks (docs/tunnel-protocol.md, "Trunks"): sealed connections that carry many
 * streams at once. An end of the previous version agrees with this one on `+data2` (or plain).
 */
export const TUNNEL_ALPN_TRUNK = 'sluice-tunnel/1+trunk2';

/** What a gateway lists, its preference first (its order picks), and what an agent with data connections on offers. */
export const GATEWAY_ALPNS: readonly string[] = [TUNNEL_ALPN_TRUNK, TUNNEL_ALPN_DATA, TUNNEL_ALPN];
export const AGENT_DATA_ALPNS: readonly string[] = GATEWAY_ALPNS;

/** Whether the agreed ALPN id carries data connections (`+trunk2` includes everything of `+data2`). */
export function dataConnAlpn(alpn: string | false | null | undefined): boolean {
  return alpn === TUNNEL_ALPN_DATA || alpn === TUNNEL_ALPN_TRUNK;
}

/** Whether the agreed ALPN id carries trunks. */
export function trunkAlpn(alpn: string | false | null | undefined): boolean {
  return alpn === TUNNEL_ALPN_TRUNK;
}

/**
 * TLS 1.3 suites of the control connection (the `ciphers` option of both ends), AES-128-GCM
 * first: with AES instructions it seals and opens stream bytes for less CPU than AES-256-GCM
 * (Node's first choice; 10 rounds instead of 14), at the strength TLS 1.3 stacks choose by
 * default. Every suite stays on offer, so an end with another order still agrees with this one;
 * the gateway's order wins (honorCipherOrder), so every agent gets AES-128-GCM from it.
 */
export const TUNNEL_CIPHERSUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

// ---- control frames: u32 length | u8 type | body; length counts type + body ----

/** u32 length + u8 type. */
export const FRAME_HEADER_BYTES = 5;
/** Largest length field accepted before authentication: every pre-auth message, at its longest, fits (AUTH_ERROR with a 200-byte reason is 204). */
export const PRE_AUTH_MAX_FRAME_BYTES = 256;
/** Largest length field accepted after authentication: the largest datagram fallback frame plus room. */
export const MAX_FRAME_BYTES = 65_536 + 1024;
/** Largest STREAM_DATA payload (HTTP/2's default SETTINGS_MAX_FRAME_SIZE), so one stream cannot hog the channel. */
export const MAX_STREAM_DATA_BYTES = 16_384;
/** Largest opaque SIGNAL payload (ICE candidates and credentials are a few hundred bytes). */
export const MAX_SIGNAL_BYTES = 16_384;
/** UDP peer-flow tags (PEER_OPEN) have this bit set; connectee tags the gateway allocates never do. */
export const PEER_TAG_BIT = 0x8000_0000;
/** Peers one OFFER may name. */
export const MAX_OFFER_PEERS = 255;
/** Largest human-readable message in AUTH_ERROR, PUBLISH_ERROR and GOAWAY, in UTF-8 bytes. */
export const MAX_REASON_BYTES = 200;
/** Names (agents, services, peers): 1-64 bytes. */
export const MAX_NAME_BYTES = 64;
/** Per-stream flow-control windows: HTTP/2's limit (RFC 9113 §6.9.1). */
export const MAX_WINDOW_BYTES = 0x7fff_ffff;
/** Default initial receive window per stream (256 KiB, as yamux's default). */
export const DEFAULT_STREAM_WINDOW_BYTES = 256 * 1024;

/** Control frame type bytes. */
export const FrameType = {
  hello: 0x01,
  challenge: 0x02,
  auth: 0x03,
  authOk: 0x04,
  authError: 0x05,
  goaway: 0x06,
  publish: 0x10,
  publishOk: 0x11,
  publishError: 0x12,
  unpublish: 0x13,
  serviceHealth: 0x15,
  streamOpen: 0x20,
  streamAccept: 0x21,
  streamData: 0x22,
  streamEnd: 0x23,
  streamReset: 0x24,
  windowUpdate: 0x25,
  datagram: 0x30,
  datagramClose: 0x31,
  ping: 0x40,
  pong: 0x41,
  offer: 0x14,
  signal: 0x50,
  signalError: 0x51,
  peerOpen: 0x52,
  peerOpenOk: 0x53,
  peerOpenError: 0x54,
  peerFlow: 0x55,
} as const;

// ---- auth ----

/** Bytes of the gateway's challenge nonce, of the TLS binding, and of each HMAC-SHA256 digest. */
export const NONCE_BYTES = 32;
export const BINDING_BYTES = 32;
export const DIGEST_BYTES = 32;
/** RFC 5705 / RFC 8446 §7.5 exporter labels. The context is the protocol version as a u16. */
export const AUTH_EXPORTER_LABEL = 'EXPORTER-sluice-tunnel-auth';
export const DATAGRAM_EXPORTER_LABEL = 'EXPORTER-sluice-datagram';

// ---- datagrams: u8 type | u8 flags | u32 key id | u32 tag | u48 sequence | ciphertext | 16-byte tag ----

/**
 * Datagram type bytes. 4-15 is the one first-byte range that RFC 7983 and RFC 9443 leave to no
 * protocol (0-3 STUN, 16-19 ZRTP, 20-63 DTLS, 64-79 TURN ChannelData, 80-127 and 192-255 QUIC,
 * 128-191 RTP/RTCP), so tunnel datagrams can share a socket with any of them.
 */
export const DatagramType = {
  data: 0x0c,
  keepalive: 0x0d,
  keepaliveAck: 0x0e,
} as const;

export const DATAGRAM_HEADER_BYTES = 16;
export const AEAD_TAG_BYTES = 16;
export const DATAGRAM_OVERHEAD_BYTES = DATAGRAM_HEADER_BYTES + AEAD_TAG_BYTES;
/** Header flag: the plaintext starts with an origin block (service id and client endpoint). */
export const FLAG_ORIGIN = 0x01;
/**
 * Header (and DATAGRAM frame) flag, only with FLAG_ORIGIN: the origin block is followed by the u16
 * public port the client sent to, for a service published with a port range.
 */
export const FLAG_ORIGIN_PORT = 0x02;
/** Ports one PUBLISH of a range may ask for (config/port-span.ts MAX_RANGE_PORTS). */
export const MAX_PUBLISH_PORTS = 10_000;
/** Longest server name a PUBLISH by name may carry (a DNS name, RFC 1035). */
export const MAX_SERVER_NAME_BYTES = 253;
/** Largest UDP payload over IPv4; a sealed datagram never exceeds it. */
export const MAX_UDP_PAYLOAD_BYTES = 65_507;
/**
 * Origin block: u16 service id | u8 family | u16 port | 4 or 16 address bytes. A range service's
 * block has 2 more bytes (FLAG_ORIGIN_PORT); its first datagrams may then carry 2 bytes less.
 */
export const MAX_ORIGIN_BYTES = 21;
/** Largest application payload of one datagram, on UDP or in a DATAGRAM control frame. */
export const MAX_DATAGRAM_PAYLOAD_BYTES = MAX_UDP_PAYLOAD_BYTES - DATAGRAM_OVERHEAD_BYTES - MAX_ORIGIN_BYTES;
/** Sequence numbers are u48: 2^48 datagrams per key and direction. */
export const MAX_SEQUENCE = 2 ** 48 - 1;
/** Default replay window in datagrams (IPsec's RFC 6479 example size; WireGuard uses 8192 - 64). */
export const DEFAULT_REPLAY_WINDOW = 2048;
/**
 * Failed authentications one key tolerates before it must be retired (RFC 9001 §6.6: integrity
 * limit of AEAD_CHACHA20_POLY1305 is 2^36 forgery attempts).
 */
export const MAX_AUTH_FAILURES_PER_KEY = 2 ** 36;
/** ChaCha20-Poly1305 (RFC 8439): no practical per-key confidentiality limit, unlike AES-GCM's 2^23 packets in QUIC. */
export const AEAD_ALGORITHM = 'chacha20-poly1305';
export const AEAD_KEY_BYTES = 32;

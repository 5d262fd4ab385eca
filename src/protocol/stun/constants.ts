/**
 * STUN numbers: the magic cookie, message classes, methods and attribute types.
 * Sources: RFC 8489 §5, §14, §18; RFC 8656 §18 (TURN); RFC 8445 §16.1 (ICE); RFC 7983 (demux).
 */

export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_BYTES = 20;
export const TRANSACTION_ID_BYTES = 12;

/** The four message classes (RFC 8489 §5), encoded in type bits C1 (0x0100) and C0 (0x0010). */
export type StunClass = 'request' | 'indication' | 'success' | 'error';

/** Method numbers (12 bits). Binding from RFC 8489; the others from RFC 8656. */
export const StunMethod = {
  Binding: 0x001,
  Allocate: 0x003,
  Refresh: 0x004,
  Send: 0x006,
  Data: 0x007,
  CreatePermission: 0x008,
  ChannelBind: 0x009,
} as const;

/** Attribute types. 0x0000-0x7FFF are comprehension-required, 0x8000-0xFFFF comprehension-optional. */
export const StunAttr = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  EvenPort: 0x0018,
  RequestedTransport: 0x0019,
  DontFragment: 0x001a,
  MessageIntegritySha256: 0x001c,
  PasswordAlgorithm: 0x001d,
  Userhash: 0x001e,
  XorMappedAddress: 0x0020,
  ReservationToken: 0x0022,
  Priority: 0x0024,
  UseCandidate: 0x0025,
  PasswordAlgorithms: 0x8002,
  AlternateDomain: 0x8003,
  Software: 0x8022,
  AlternateServer: 0x8023,
  Fingerprint: 0x8028,
  IceControlled: 0x8029,
  IceControlling: 0x802a,
} as const;

/** True for 0x0000-0x7FFF: an agent that does not understand one must not ignore it (RFC 8489 §14). */
export function isComprehensionRequired(type: number): boolean {
  return type < 0x8000;
}

/** Every attribute type this codec understands; the default "known" set for 420 decisions. */
export const KNOWN_ATTRIBUTES: ReadonlySet<number> = new Set(Object.values(StunAttr));

/** PASSWORD-ALGORITHM values (RFC 8489 §18.5). */
export const PasswordAlgorithm = { Md5: 0x0001, Sha256: 0x0002 } as const;

/** Error codes a relay and an ICE agent send or must recognise (RFC 8489 §14.8, RFC 8656, RFC 8445). */
export const StunErrorCode = {
  TryAlternate: 300,
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  UnknownAttribute: 420,
  AllocationMismatch: 437,
  StaleNonce: 438,
  AddressFamilyNotSupported: 440,
  WrongCredentials: 441,
  UnsupportedTransportProtocol: 442,
  PeerAddressFamilyMismatch: 443,
  AllocationQuotaReached: 486,
  RoleConflict: 487,
  ServerError: 500,
  InsufficientCapacity: 508,
} as const;

/** XOR for FINGERPRINT (RFC 8489 §14.7): the ASCII of "STUN". */
export const FINGERPRINT_XOR = 0x5354554e;

/** The cookie that opens a NONCE when the server supports the RFC 8489 security features (§9.2). */
export const NONCE_COOKIE = 'obMatJos2';

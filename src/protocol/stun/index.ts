/** The STUN codec (RFC 8489, RFC 5389 compatible): pure functions over Buffer. */
export * from './constants.js';
export * from './header.js';
export * from './address.js';
export * from './attributes.js';
export * from './message.js';
export * from './integrity.js';
export * from './credentials.js';
export * from './fingerprint.js';
export * from './demux.js';

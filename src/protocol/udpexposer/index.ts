/** udpexposer 0.3.0 wire codec (pure; no sockets, no timers). See docs/udpexposer.md. */
export * from './constants.js';
export * from './errors.js';
export * from './frame.js';
export * from './claims.js';
export * from './key.js';
export * from './token.js';

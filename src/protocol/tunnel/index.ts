/** The agent-gateway tunnel protocol (docs/tunnel-protocol.md): pure codecs and crypto, no sockets. */
export * from './constants.js';
export * from './errors.js';
export * from './control-messages.js';
export * from './control-codec.js';
export * from './frame-reader.js';
export * from './control-phase.js';
export * from './auth.js';
export * from './key-schedule.js';
export * from './replay-window.js';
export * from './datagram-header.js';
export * from './datagram-sealer.js';
export * from './datagram-opener.js';
export * from './flow-control.js';
export { isValidTunnelName } from './wire.js';
export { isValidServerName } from './publish-extension.js';
export * from './group-proof.js';

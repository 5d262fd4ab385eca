/** udpexposer-compatible mode: server and client roles on the UDP datapath (js or native). See docs/udpexposer.md. */
export { UdpexposerServer, type UdpexposerServerConfig } from './server.js';
export {
  UdpexposerServerCore, newServerCounters,
  type ServerCoreDeps, type ServerDropReason, type UdpexposerServerCounters, type UdpexposerServerOptions,
} from './server-core.js';
export { UdpexposerClient, type ClientDropReason, type UdpexposerClientConfig, type UdpexposerClientCounters } from './client.js';
export { ConnecteeTable, type Connectee, type ConnecteeLookup, type ConnecteeTableOptions } from './connectee-table.js';
export { RetryCookies, type CookieCheck } from './retry-cookie.js';
export { classifyPeer, defaultAllowPrivate, peerPolicy, type PeerClass, type PeerPolicy, type PeerPolicyOptions } from './peer-policy.js';
export type { DatagramSender, PeerAddress, UdpexposerDeps, UdpexposerEvent } from './types.js';

/** udpexposer-compatible mode: server and client roles on the UDP datapath (js or native). See docs/udpexposer.md. */
export { UdpexposerServer, type UdpexposerServerConfig } from './server.js';
export { UdpexposerServerCore, type ServerCoreDeps, type UdpexposerServerOptions } from './server-core.js';
export { UdpexposerClient, type UdpexposerClientConfig } from './client.js';
export {
  newClientCounters, newServerCounters,
  type ClientDropReason, type ServerDropReason, type UdpexposerClientCounters, type UdpexposerServerCounters,
} from './counters.js';
export { ConnecteeTable, type Connectee, type ConnecteeLookup, type ConnecteeTableOptions } from './connectee-table.js';
export { RetryCookies, type CookieCheck } from './retry-cookie.js';
export { classifyPeer, defaultAllowPrivate, peerPolicy, type PeerClass, type PeerPolicy, type PeerPolicyOptions } from './peer-policy.js';
export type { DatagramSender, PeerAddress, UdpexposerDeps, UdpexposerEvent } from './types.js';

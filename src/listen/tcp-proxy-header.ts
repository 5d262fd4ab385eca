import type { Endpoint } from '../core/address.js';
import type { ProxyProtocolSettings } from '../config/types.js';
import { ProxyTrust } from '../admission/proxy-trust.js';
import { encodeProxyV1, encodeProxyV2 } from '../protocol/proxy-protocol/index.js';

/** PROXY protocol settings of a TCP route, compiled once per config. */
export class TcpProxyHeaders {
  readonly trust: ProxyTrust;

  constructor(readonly settings: ProxyProtocolSettings) {
    this.trust = new ProxyTrust(settings.accept);
  }

  /** The header to write to the upstream before any client byte, or undefined when sending is off. */
  outbound(client: Endpoint, destination: Endpoint): Buffer | undefined {
    const addresses = { source: client, destination };
    if (this.settings.send === 'v1') return encodeProxyV1(addresses);
    if (this.settings.send === 'v2') return encodeProxyV2({ transport: 'STREAM', addresses });
    return undefined;
  }
}

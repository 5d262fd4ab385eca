import type { Endpoint } from '../core/address.js';
import type { UdpProxyPolicy } from './session-policy.js';
import type { DropReason } from '../observe/events.js';
import { ProxyTrust, startsWithProxySignature } from '../admission/proxy-trust.js';
import { decodeProxyDatagram, encodeProxyV2, isProxyHeaderError } from '../protocol/proxy-protocol/index.js';

/** What a datagram from a trusted sender says about its client. */
export interface ProxiedDatagram {
  /** The real client; undefined for LOCAL / UNSPEC headers (then the sender is the client). */
  readonly source: Endpoint | undefined;
  readonly destination: Endpoint | undefined;
  /** Where the payload starts. */
  readonly offset: number;
}

/**
 * PROXY protocol v2 on a UDP route: every datagram from a trusted sender carries its own header
 * (HAProxy spec, section 2.2 for DGRAM); a header from an untrusted sender, or a trusted datagram
 * without a valid header, is dropped and counted, never guessed at.
 */
export class UdpProxyHeaders {
  readonly #trust: ProxyTrust;
  readonly #maxHeaderBytes: number;

  constructor(readonly settings: UdpProxyPolicy) {
    this.#trust = new ProxyTrust(settings.accept);
    this.#maxHeaderBytes = settings.maxHeaderBytes;
  }

  get receives(): boolean {
    return !this.#trust.empty;
  }

  /**
   * Classifies one datagram: `null` for plain traffic from an untrusted sender, the parsed
   * header for a trusted one, or the reason to drop it.
   */
  inbound(buf: Buffer, sender: string): ProxiedDatagram | null | DropReason {
    if (!this.#trust.trusts(sender)) return startsWithProxySignature(buf) === 'yes' ? 'proxy-header-untrusted' : null;
    try {
      const { header, length } = decodeProxyDatagram(buf, { maxV2HeaderBytes: this.#maxHeaderBytes });
      const a = header.addresses;
      return { source: a?.source, destination: a?.destination, offset: length };
    } catch (err) {
      if (isProxyHeaderError(err) && err.reason === 'not-proxy') return 'proxy-header-missing';
      return 'proxy-header-invalid';
    }
  }

  /** The v2 header a session puts in front of its datagrams, or null when sending is off. */
  outboundHeader(client: Endpoint, destination: Endpoint): Buffer | null {
    if (this.settings.send !== 'v2') return null;
    return encodeProxyV2({ transport: 'DGRAM', addresses: { source: client, destination } });
  }
}

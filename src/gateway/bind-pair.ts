import { isIP } from 'node:net';
import tls from 'node:tls';
import { formatHostPort, type Endpoint } from '../core/address.js';
import { errnoCode, SluiceError } from '../core/errors.js';
import type { GatewayConfig } from '../config/expose-config.js';
import type { ListenerReceiver, UdpDatapath, UdpListener } from '../datapath/udp-datapath.js';
import type { StreamConn, StreamDatapath, StreamListener } from '../datapath/stream-datapath.js';
import { jsStreamDatapath } from '../datapath/js-stream-datapath.js';
import { GATEWAY_ALPNS, TUNNEL_ALPN_TRUNK, TUNNEL_CIPHERSUITES } from '../protocol/tunnel/index.js';
import type { GatewayCertificate } from './certificate.js';

/**
 * TLS on `listen`, then UDP on the same port number (a port 0 listen retries until both fit). A
 * plain TCP listener (on the stream datapath, so data connections stay its connections) accepts and
 * hands to TLS only the connections the pre-auth slots admit, so a
 * refused one costs no TLS state, and its backlog is deep enough that a flood of refused
 * reconnects does not crowd legitimate SYNs out of the kernel's accept queue.
 */
/** The gateway's two sockets on one port number: the agent endpoint (TCP, then TLS) and the shared UDP port. */
export interface BoundPair {
  readonly server: tls.Server;
  /** The TCP listener on the stream datapath: control connections (TLS) and data connections. */
  readonly front: StreamListener;
  readonly udp: UdpListener;
  readonly tcp: Endpoint;
  readonly udpLocal: Endpoint;
}

export async function bindPair(
  config: GatewayConfig,
  cert: GatewayCertificate,
  datapath: UdpDatapath,
  receiver: ListenerReceiver,
  streams: StreamDatapath,
  onConnection: (conn: StreamConn) => void,
): Promise<BoundPair> {
  const { host, port } = config.listen;
  for (let attempt = 0; ; attempt++) {
    const server = tls.createServer({
      cert: cert.cert,
      key: cert.key,
      minVersion: 'TLSv1.3',
      ciphers: TUNNEL_CIPHERSUITES,
      honorCipherOrder: true,
      // The gateway's order wins: data connections with agents that offer them (constants.ts).
      // Trunks only where the tunnel port's stream datapath relays them (the native one).
      ALPNProtocols: streams.trunk ? [...GATEWAY_ALPNS] : GATEWAY_ALPNS.filter((a) => a !== TUNNEL_ALPN_TRUNK),
      handshakeTimeout: config.handshakeTimeoutMs,
      allowHalfOpen: false,
    });
    let front: StreamListener;
    try {
      // A listen host that is a name (not an IP literal) is bound by Node's net, which resolves it.
      front = await (isIP(host) ? streams : jsStreamDatapath).listen(host, port, onConnection);
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_BIND', `gateway: cannot listen on tcp ${formatHostPort(host, port)}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    const tcp = front.local;
    let udp: UdpListener;
    try {
      udp = await datapath.listen(host, tcp.port, receiver);
    } catch (err) {
      await front.close();
      if (port === 0 && errnoCode(err) === 'EADDRINUSE' && attempt < 20) continue;
      throw new SluiceError('SLUICE_ERR_BIND', `gateway: cannot bind udp ${formatHostPort(host, tcp.port)}: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
    udp.coalesce?.(); // agents send their runs with UDP_SEGMENT
    return { server, front, udp, tcp, udpLocal: udp.local };
  }
}

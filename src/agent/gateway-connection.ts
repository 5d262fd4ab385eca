import tls from 'node:tls';
import net from 'node:net';
import type { Clock } from '../core/clock.js';
import { SluiceError } from '../core/errors.js';
import {
  TUNNEL_ALPN, AGENT_DATA_ALPNS, TUNNEL_CIPHERSUITES, dataConnAlpn, TUNNEL_PROTOCOL_VERSION, computeAuthDigest, exportAuthBinding, exportDatagramKeys, verifyGatewayProof,
  type AuthOk, type DatagramKeys, type RefusalCode,
} from '../protocol/tunnel/index.js';
import { ControlChannel } from '../upstream/agent/control-channel.js';

/** Why a connection attempt failed: a refusal code from the gateway, or what happened here. */
export type ConnectFailure = RefusalCode | 'certificate-mismatch' | 'tls-error' | 'bad-proof' | 'timeout' | 'closed';

/** A failed connection attempt; `failure` is stable, the message is for people. */
export class GatewayConnectError extends SluiceError {
  constructor(
    readonly failure: ConnectFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super('SLUICE_ERR_TUNNEL_AUTH', message, options);
  }
}

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  readonly token: string;
  /** 64 lowercase hex digits, or undefined when `ca` authenticates the gateway. */
  readonly fingerprint: string | undefined;
  /** Several accepted pins (a fleet whose gateways have their own certificates); `fingerprint` is then ignored. */
  readonly fingerprints?: readonly string[];
  readonly ca: Buffer | undefined;
  readonly serverName: string | undefined;
  readonly datagramKeyId: number;
  readonly resumeKeyId: number;
  readonly streamWindow: number;
  readonly timeoutMs: number;
  /** Times the whole attempt, and the channel's timers once connected. */
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** Source address to connect from (the OS picks when absent). */
  readonly localAddress?: string;
  /** Offer data connections (AGENT_DATA_ALPNS) besides the first protocol. */
  readonly dataConnections?: boolean;
  /** Called with the datagram keys once TLS is up and before HELLO, so the opener exists before the gateway can seal to it. */
  readonly onKeys?: (keys: DatagramKeys) => void;
}

export interface Connected {
  readonly channel: ControlChannel;
  readonly authOk: AuthOk;
  readonly keys: DatagramKeys;
  /** The connection's TLS binding (exportAuthBinding): pool key proofs are bound to it. */
  readonly binding: Buffer;
}

/**
 * One connection attempt (docs/tunnel-protocol.md §3, agent side): TLS 1.3 with the tunnel ALPN,
 * the certificate pin (or CA), HELLO, CHALLENGE, AUTH, then AUTH_OK whose proof must verify
 * before anything is trusted. A pin mismatch is told to the gateway with GOAWAY(not-allowed) so
 * its operator sees it too; no secret is sent to a gateway that failed the pin.
 */
export function connectToGateway(o: ConnectOptions): Promise<Connected> {
  return new Promise<Connected>((resolve, reject) => {
    let channel: ControlChannel | undefined;
    let keys: DatagramKeys | undefined;
    let settled = false;
    const fail = (err: GatewayConnectError) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      o.signal.removeEventListener('abort', onAbort);
      if (channel) channel.destroy({ error: err });
      else socket.destroy();
      reject(err);
    };
    const onAbort = () => fail(new GatewayConnectError('closed', 'connecting was cancelled'));
    const timer = o.clock.setTimeout(() => fail(new GatewayConnectError('timeout', `no authenticated connection within ${o.timeoutMs}ms`)), o.timeoutMs);
    const socket = tls.connect({
      host: o.host,
      port: o.port,
      ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
      servername: o.serverName ?? (net.isIP(o.host) ? undefined : o.host),
      ALPNProtocols: o.dataConnections ? [...AGENT_DATA_ALPNS] : [TUNNEL_ALPN],
      minVersion: 'TLSv1.3',
      ciphers: TUNNEL_CIPHERSUITES,
      ca: o.ca,
      // With a pin, the chain is not checked (a self-signed certificate); the pin is, below.
      rejectUnauthorized: o.ca !== undefined,
    });
    socket.setNoDelay(true);
    socket.on('error', (err) => fail(new GatewayConnectError('tls-error', `cannot connect to the gateway: ${err.message}`, { cause: err })));
    if (o.signal.aborted) return onAbort();
    o.signal.addEventListener('abort', onAbort, { once: true });

    socket.once('secureConnect', () => {
      channel = new ControlChannel(socket, 'agent', o.clock);
      const pins = o.fingerprints ?? (o.fingerprint === undefined ? undefined : [o.fingerprint]);
      if (pins !== undefined) {
        const got = socket.getPeerCertificate().fingerprint256?.replace(/:/g, '').toLowerCase() ?? '';
        if (!pins.includes(got)) {
          channel.send({ type: 'goaway', code: 'not-allowed', message: 'certificate fingerprint mismatch' });
          channel.end();
          const pinned = pins.length === 1 ? `the pin is sha256:${pins[0]}` : `none of the ${pins.length} pins (${pins.map((p) => `sha256:${p.slice(0, 16)}…`).join(', ')}) matches`;
          return fail(new GatewayConnectError('certificate-mismatch', `the gateway's certificate is sha256:${got}, ${pinned}`));
        }
      }
      if (socket.alpnProtocol !== TUNNEL_ALPN && !(o.dataConnections && dataConnAlpn(socket.alpnProtocol))) return fail(new GatewayConnectError('tls-error', 'the gateway did not agree on the tunnel protocol (ALPN)'));
      try {
        keys = exportDatagramKeys(socket, 'agent');
      } catch (err) {
        return fail(new GatewayConnectError('tls-error', (err as Error).message, { cause: err }));
      }
      o.onKeys?.(keys);
      void channel.ended.then((end) => {
        if (end.goaway) fail(new GatewayConnectError(end.goaway.code, `the gateway closed the connection: ${end.goaway.code}: ${end.goaway.message}`));
        else fail(new GatewayConnectError(end.error?.name === 'TunnelError' ? 'protocol-error' : 'closed', `the connection ended during the handshake: ${end.error?.message ?? 'closed'}`));
      });
      let nonce: Buffer | undefined;
      const binding = exportAuthBinding(socket);
      channel.onMessage((m) => {
        if (m.type === 'challenge') {
          nonce = Buffer.from(m.nonce);
          channel!.send({ type: 'auth', digest: computeAuthDigest({ token: o.token, nonce, binding, agentName: o.name }) });
        } else if (m.type === 'auth-error') {
          fail(new GatewayConnectError(m.code, `the gateway refused: ${m.code}: ${m.message}`));
        } else if (m.type === 'auth-ok') {
          if (!nonce || !verifyGatewayProof({ token: o.token, nonce, binding, agentName: o.name }, m.proof)) {
            return fail(new GatewayConnectError('bad-proof', 'the gateway could not prove it knows the token'));
          }
          settled = true;
          timer.cancel();
          o.signal.removeEventListener('abort', onAbort);
          resolve({ channel: channel!, authOk: m, keys: keys!, binding });
        }
      });
      channel.send({
        type: 'hello',
        version: TUNNEL_PROTOCOL_VERSION,
        name: o.name,
        datagramKeyId: o.datagramKeyId,
        resumeKeyId: o.resumeKeyId,
        streamWindow: o.streamWindow,
      });
    });
  });
}

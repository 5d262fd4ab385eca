import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../core/clock.js';
import type { AgentCredentials } from '../config/expose-config.js';
import {
  TUNNEL_PROTOCOL_VERSION, createChallengeNonce, exportAuthBinding, verifyAuthDigest, type Hello, type RefusalCode,
} from '../protocol/tunnel/index.js';
import type { ControlChannel } from '../upstream/agent/control-channel.js';
import type { AuthBackoff } from './auth-backoff.js';

/** Why a connection never got past the handshake (the refusal codes, and what has no code). */
export type HandshakeFailure = RefusalCode | 'handshake-timeout' | 'closed-before-auth' | 'certificate-rejected';

export type HandshakeOutcome =
  | { readonly ok: true; readonly hello: Hello; readonly token: string; readonly nonce: Buffer; readonly binding: Buffer }
  | { readonly ok: false; readonly failure: HandshakeFailure; readonly agent?: string; readonly message: string };

export interface HandshakeDeps {
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly backoff: AuthBackoff;
  readonly credentials: (name: string) => AgentCredentials | undefined;
  /** The source address, for the backoff. */
  readonly source: string;
}

/** A dummy key, so an unknown name costs the same HMAC as a known one. */
const DUMMY_TOKEN = randomBytes(32);

/**
 * The gateway's side of the handshake (docs/tunnel-protocol.md §3): HELLO, CHALLENGE, AUTH,
 * verified in constant time against the agent's token and bound to this TLS connection. Holds
 * nothing but the nonce and the HELLO fields; on failure it answers AUTH_ERROR (a clear code for
 * the agent) and closes. On success the caller sends AUTH_OK.
 */
export function runGatewayHandshake(channel: ControlChannel, deps: HandshakeDeps): Promise<HandshakeOutcome> {
  return new Promise((resolve) => {
    let hello: Hello | undefined;
    let nonce: Buffer | undefined;
    let done = false;
    const finish = (o: HandshakeOutcome) => {
      if (done) return;
      done = true;
      timer.cancel();
      resolve(o);
    };
    const refuse = (code: RefusalCode, message: string) => {
      // The agent accepts AUTH_ERROR only in answer to AUTH (control-phase.ts); before the
      // CHALLENGE the same code travels in a GOAWAY, which every phase accepts.
      channel.send(nonce ? { type: 'auth-error', code, message } : { type: 'goaway', code, message });
      channel.end();
      channel.destroyAfter(1000, { sent: code });
      finish({ ok: false, failure: code, agent: hello?.name, message });
    };
    const timer = deps.clock.setTimeout(() => {
      finish({ ok: false, failure: 'handshake-timeout', agent: hello?.name, message: `no authentication within ${deps.timeoutMs}ms` });
      channel.destroy({ sent: 'protocol-error' });
    }, deps.timeoutMs);

    void channel.ended.then((end) => {
      if (end.goaway && !hello) {
        // An agent whose certificate pin does not match says so before closing (agent-connection.ts).
        return finish({ ok: false, failure: 'certificate-rejected', message: `the agent refused the certificate: ${end.goaway.message}` });
      }
      finish({ ok: false, failure: end.error && end.error.name === 'TunnelError' ? 'protocol-error' : 'closed-before-auth', agent: hello?.name, message: end.error?.message ?? 'closed' });
    });

    channel.onMessage((m) => {
      if (done) return;
      if (m.type === 'hello') {
        hello = m;
        if (m.version !== TUNNEL_PROTOCOL_VERSION) return refuse('unsupported-version', `this gateway speaks tunnel version ${TUNNEL_PROTOCOL_VERSION}`);
        const wait = deps.backoff.waitMs(deps.source);
        if (wait > 0) return refuse('rate-limited', `too many failed authentications from this address; retry in ${Math.ceil(wait / 1000)}s`);
        nonce = createChallengeNonce();
        channel.send({ type: 'challenge', nonce });
        return;
      }
      if (m.type === 'auth' && hello && nonce) {
        const creds = deps.credentials(hello.name);
        let binding: Buffer;
        try {
          binding = exportAuthBinding(channel.socket as TLSSocket);
        } catch (err) {
          return refuse('protocol-error', (err as Error).message);
        }
        const input = { token: creds?.token ?? DUMMY_TOKEN, nonce, binding, agentName: hello.name };
        const ok = verifyAuthDigest(input, m.digest);
        if (!creds || !ok) {
          deps.backoff.failed(deps.source);
          return creds
            ? refuse('wrong-token', `the token for agent "${hello.name}" is wrong`)
            : refuse('unknown-agent', `this gateway has no agent "${hello.name}"`);
        }
        deps.backoff.succeeded(deps.source);
        finish({ ok: true, hello, token: creds.token, nonce, binding });
      }
    });
  });
}

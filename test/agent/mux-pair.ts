import { PassThrough } from 'node:stream';
import { encodeControlMessage } from '../../src/protocol/tunnel/index.js';
import { ControlChannel } from '../../src/upstream/agent/control-channel.js';
import { StreamMux } from '../../src/upstream/agent/stream-mux.js';
import type { TunnelStream } from '../../src/upstream/agent/tunnel-stream.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/net.js';
import { duplexOf } from '../helpers/pipes.js';

export const EP = { address: '192.0.2.7', port: 40000, family: 4 as const };

/**
 * Two multiplexers over in-memory pipes (no TLS, no sockets). Each channel is walked through the
 * handshake messages first, so both are in the open phase as after AUTH_OK.
 */
export async function pair(window: number, onOpen?: (s: TunnelStream) => void) {
  const clock = new ManualClock();
  const a2g = new PassThrough();
  const g2a = new PassThrough();
  const gc = new ControlChannel(duplexOf(a2g, g2a), 'gateway', clock);
  const ac = new ControlChannel(duplexOf(g2a, a2g), 'agent', clock);
  a2g.write(encodeControlMessage({ type: 'hello', version: 1, name: 'home', datagramKeyId: 1, resumeKeyId: 0, streamWindow: window }));
  a2g.write(encodeControlMessage({ type: 'auth', digest: Buffer.alloc(32) }));
  g2a.write(encodeControlMessage({ type: 'challenge', nonce: Buffer.alloc(32) }));
  g2a.write(encodeControlMessage({ type: 'auth-ok', datagramKeyId: 2, resumed: false, streamWindow: window, keepaliveIntervalMs: 1000, proof: Buffer.alloc(32) }));
  await waitFor(() => gc.phase === 'open' && ac.phase === 'open', 'both phases open');
  const accepted: TunnelStream[] = [];
  const gm = new StreamMux(gc, { role: 'gateway', localWindow: window, peerWindow: window, maxStreams: 16 });
  const am = new StreamMux(ac, { role: 'agent', localWindow: window, peerWindow: window, maxStreams: 16 }, (s) => {
    accepted.push(s);
    if (onOpen) onOpen(s);
    else am.accept(s);
  });
  gc.onMessage((m) => void gm.handle(m));
  ac.onMessage((m) => void am.handle(m));
  const open = () => gm.open(1, EP, EP, 1000, new AbortController().signal);
  return { gm, am, accepted, open, clock, g2a };
}

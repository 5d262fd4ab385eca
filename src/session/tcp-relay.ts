import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { EndReason } from '../observe/events.js';
import type { Clock } from '../core/clock.js';
import type { FlowGates } from '../admission/bandwidth-limiter.js';
import { pipeLimited } from './limited-pipe.js';

/** Bandwidth gates of one connection and the clock their timers run on (session/limited-pipe.ts). */
export interface RelayBandwidth {
  readonly gates: FlowGates;
  readonly clock: Clock;
}

export interface RelayOutcome {
  readonly reason: EndReason;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}

/**
 * Wires an accepted client socket to an upstream stream: the one place where two byte streams
 * are joined. Ownership: takes both; the caller must not read, write or destroy them afterwards
 * except through `stop`.
 * Half-close: a FIN from either side is forwarded as a FIN, not taken as the end of the
 * connection (RFC 9293 section 3.6); both sockets must have been made with allowHalfOpen.
 * Backpressure: pipe() pauses the reader while the writer's buffer is above its high-water mark,
 * so a slow reader holds at most one buffer per direction.
 * Bandwidth: with gates, a limited direction is paced by pausing its reader (session/limited-pipe.ts).
 * Idle: `idleTimeoutMs` of no bytes in either direction (the client socket's timer is refreshed
 * by reads and writes alike) ends both sides.
 */
export function relayTcp(
  down: Socket,
  up: Duplex,
  idleTimeoutMs: number,
  onDone: (outcome: RelayOutcome) => void,
  /** When given, client bytes flow upstream only once it resolves true (false ends both sides). */
  clientReady?: Promise<boolean>,
  bandwidth?: RelayBandwidth,
): (reason: EndReason) => void {
  let reason: EndReason | undefined;
  let open = 2;
  const stop = (why: EndReason) => {
    reason ??= why;
    down.destroy();
    up.destroy();
  };
  const onClosed = () => {
    if (--open > 0) return;
    onDone({ reason: reason ?? 'client-closed', bytesFromClient: down.bytesRead, bytesToClient: down.bytesWritten });
  };
  down.on('end', () => (reason ??= 'client-closed'));
  up.on('end', () => (reason ??= 'upstream-closed'));
  down.on('error', () => stop('client-error'));
  up.on('error', () => stop('upstream-error'));
  down.on('timeout', () => stop('idle-timeout'));
  down.on('close', onClosed);
  up.on('close', onClosed);
  if (idleTimeoutMs > 0) down.setTimeout(idleTimeoutMs);
  const gates = bandwidth?.gates;
  if (gates?.down) pipeLimited(up, down, gates.down, bandwidth!.clock);
  else up.pipe(down);
  const upward = gates?.up ? () => pipeLimited(down, up, gates.up!, bandwidth!.clock) : () => down.pipe(up);
  if (!clientReady) upward();
  else void clientReady.then((ok) => (ok ? upward() : stop('client-error')));
  return stop;
}

import type { Clock } from '../core/clock.js';
import { TokenBucket } from '../core/token-bucket.js';
import type { SluiceEvent } from './events.js';
import type { LineWriter } from './line-writer.js';
import { peerPathTracker, type PeerFlowLookup } from './peer-path.js';
import { counterFields, flowFields } from './record-fields.js';

/** Rejection lines allowed per second before they are summarised (a flood must not flood the log). */
const REJECT_LINES = { perSecond: 20, burst: 40 };

/** Peers whose last `peer-path` line is remembered (to skip repeats); bounded by the config's peers in practice. */
const MAX_PEERS_REMEMBERED = 1024;

export interface AccessLogOptions {
  /**
   * This process run's UUID, written on every line: `flowId` restarts at 1 with each run, so a file
   * appended across restarts identifies a flow by (`instanceId`, `flowId`).
   */
  readonly instanceId?: string;
  /** The peer flow of a connect session, so its `end` line says which path carried it (`peerPath`). */
  readonly peerFlow?: PeerFlowLookup;
}

/**
 * The L4 access log: one `start` and one `end` line per session or connection, plus `reject`
 * lines for refused clients (rate-limited, with a `suppressed` count carried on the next one),
 * and a `peer-path` line when a peer link changes state, path or reason. Sessions of `connect/`
 * routes carry `peerPath` on their `end` line. Schema in docs/access-log.md.
 */
export function accessLogSink(out: LineWriter, clock: Clock, opts: AccessLogOptions = {}): (e: SluiceEvent) => void {
  const rejects = new TokenBucket(REJECT_LINES, clock);
  let suppressed = 0;
  const time = (at: number) => new Date(at).toISOString();
  const peers = peerPathTracker(opts.peerFlow);
  const lastPeerLine = new Map<string, string>();
  const instance = opts.instanceId === undefined ? {} : { instanceId: opts.instanceId };
  return (e) => {
    switch (e.type) {
      case 'session-started':
        peers.started(e.flow);
        out.write(JSON.stringify({ time: time(e.at), event: 'start', ...instance, ...flowFields(e.flow, e.upstream) }) + '\n');
        return;
      case 'session-ended':
        out.write(
          JSON.stringify({
            time: time(e.at),
            event: 'end',
            ...instance,
            ...flowFields(e.flow, e.upstream),
            startTime: time(e.startedAt),
            durationMs: e.durationMs,
            ...counterFields(e.counters),
            reason: e.reason,
            ...(e.detail ? { detail: e.detail } : {}),
            ...(e.dropped ? { dropped: e.dropped } : {}),
            ...peers.ended(e.flow),
          }) + '\n',
        );
        return;
      case 'session-would-end':
        out.write(JSON.stringify({ time: time(e.at), event: 'would-end', ...flowFields(e.flow, undefined), reason: e.reason, ...(e.detail ? { detail: e.detail } : {}) }) + '\n');
        return;
      case 'peer-path': {
        // The agent reports every change it sees; a line repeating the previous one of that peer is left out.
        const key = `${e.state}\0${e.path}\0${e.reason ?? ''}`;
        if (lastPeerLine.get(e.peer) === key) return;
        if (!lastPeerLine.has(e.peer) && lastPeerLine.size >= MAX_PEERS_REMEMBERED) lastPeerLine.clear();
        lastPeerLine.set(e.peer, key);
        out.write(JSON.stringify({ time: time(e.at), event: 'peer-path', ...instance, peer: e.peer, state: e.state, path: e.path, ...(e.reason === undefined ? {} : { reason: e.reason }) }) + '\n');
        return;
      }
      case 'session-rejected':
        if (!rejects.take()) {
          suppressed++;
          return;
        }
        out.write(
          JSON.stringify({
            time: time(e.at),
            event: 'reject',
            ...instance,
            route: e.route,
            proto: e.proto,
            clientAddr: e.client.address,
            clientPort: e.client.port,
            reason: e.reason,
            ...(e.detail ? { detail: e.detail } : {}),
            ...(e.observeOnly ? { observeOnly: true } : {}),
            ...(suppressed > 0 ? { suppressed } : {}),
          }) + '\n',
        );
        suppressed = 0;
        return;
      default:
        return;
    }
  };
}

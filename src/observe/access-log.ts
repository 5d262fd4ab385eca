import type { Clock } from '../core/clock.js';
import { TokenBucket } from '../admission/token-bucket.js';
import type { SluiceEvent } from './events.js';
import type { LineWriter } from './line-writer.js';
import { counterFields, flowFields } from './record-fields.js';

/** Rejection lines allowed per second before they are summarised (a flood must not flood the log). */
const REJECT_LINES = { perSecond: 20, burst: 40 };

/**
 * The L4 access log: one `start` and one `end` line per session or connection, plus `reject`
 * lines for refused clients (rate-limited, with a `suppressed` count carried on the next one).
 * Schema in docs/access-log.md.
 */
export function accessLogSink(out: LineWriter, clock: Clock): (e: SluiceEvent) => void {
  const rejects = new TokenBucket(REJECT_LINES, clock);
  let suppressed = 0;
  const time = (at: number) => new Date(at).toISOString();
  return (e) => {
    switch (e.type) {
      case 'session-started':
        out.write(JSON.stringify({ time: time(e.at), event: 'start', ...flowFields(e.flow, e.upstream) }) + '\n');
        return;
      case 'session-ended':
        out.write(
          JSON.stringify({
            time: time(e.at),
            event: 'end',
            ...flowFields(e.flow, e.upstream),
            startTime: time(e.startedAt),
            durationMs: e.durationMs,
            ...counterFields(e.counters),
            reason: e.reason,
          }) + '\n',
        );
        return;
      case 'session-rejected':
        if (!rejects.take()) {
          suppressed++;
          return;
        }
        out.write(
          JSON.stringify({
            time: time(e.at),
            event: 'reject',
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

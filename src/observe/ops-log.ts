import type { Logger } from 'pino';
import { formatHostPort } from '../core/address.js';
import type { SluiceEvent } from './events.js';

/**
 * What an operator needs in the process log: routes going up and down, reloads, and dial errors
 * (at most one line per route per second, with a count of the ones folded in). Per-session
 * records go to the access log, not here.
 */
export function opsLogSink(log: Logger, clock: { now(): number }): (e: SluiceEvent) => void {
  const lastDialError = new Map<string, { at: number; folded: number }>();
  return (e) => {
    switch (e.type) {
      case 'route-up':
        log.info({ route: e.route, listen: e.listen, address: formatHostPort(e.address.address, e.address.port) }, 'route up');
        return;
      case 'route-down':
        log.info({ route: e.route, listen: e.listen, address: formatHostPort(e.address.address, e.address.port) }, 'route down');
        return;
      case 'config-reloaded':
        log.info({ added: e.added, removed: e.removed, changed: e.changed, rebuilt: e.rebuilt }, 'config reloaded');
        return;
      case 'config-rejected':
        log.error({ problems: e.problems }, 'config rejected; the running config stays');
        return;
      case 'verdicts-reapplied':
        // One line per change that touched live sessions (the access log has one line per session).
        if (e.ended > 0 || e.wouldEnd > 0) log.info({ cause: e.cause, checked: e.checked, ended: e.ended, wouldEnd: e.wouldEnd }, 'verdicts changed; live sessions judged again');
        return;
      case 'ban-added':
        // The audit trail of the ban list (docs/bans.md): one line per change, whoever made it.
        log.info({ target: e.ban.target, source: e.ban.source, reason: e.ban.reason, expiresAt: new Date(e.ban.expiresAt).toISOString() }, e.observeOnly ? 'ban would be added (observe mode)' : 'ban added');
        return;
      case 'ban-removed':
        log.info({ target: e.ban.target, source: e.ban.source, why: e.why }, e.why === 'expired' ? 'ban expired' : 'ban removed');
        return;
      case 'dial-error': {
        const now = clock.now();
        const last = lastDialError.get(e.flow.route);
        if (last && now - last.at < 1000) {
          last.folded++;
          return;
        }
        log.warn({ route: e.flow.route, upstream: e.upstream, code: e.code, folded: last?.folded ?? 0 }, e.message);
        lastDialError.set(e.flow.route, { at: now, folded: 0 });
        return;
      }
      case 'pool-member':
        // Up/down transitions of pool members (docs/pools.md): one line each.
        (e.to === 'down' || e.to === 'ejected' ? log.warn : log.info).call(log, { route: e.route, member: e.member, from: e.from, to: e.to, cause: e.cause }, `pool member ${e.to}`);
        return;
      default:
        return;
    }
  };
}

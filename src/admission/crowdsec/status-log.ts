import type { Logger } from 'pino';
import type { BouncerStatus } from './crowdsec-bouncer.js';
import type { CrowdsecSettings } from '../../config/crowdsec-settings.js';

/**
 * Ops-log lines for bouncer state changes: one line per change, never one per pull, so a LAPI
 * that stays down is reported once (with the failure) and once more when it is back.
 * The key is never logged.
 */
export function crowdsecStatusLogger(log: Logger): (s: BouncerStatus, settings: CrowdsecSettings) => void {
  return (s, settings) => {
    const fields = {
      lapi: settings.url,
      state: s.state,
      previous: s.previous,
      ips: s.ips,
      ranges: s.ranges,
      ...(s.error ? { failure: s.error.kind, consecutiveFailures: s.consecutiveFailures } : {}),
    };
    switch (s.state) {
      case 'ready':
        log.info(fields, 'crowdsec decisions loaded');
        return;
      case 'degraded':
        log.warn(fields, `crowdsec pull failed; using the last decision list: ${s.error?.message}`);
        return;
      case 'stale':
      case 'unavailable':
        log.error({ ...fields, onUnavailable: settings.onUnavailable }, `crowdsec decisions ${s.state}; onUnavailable ${settings.onUnavailable} applies: ${s.error?.message}`);
        return;
      default:
        return;
    }
  };
}

/** Constants of the running bouncer; its settings are config/crowdsec-settings.ts. */

/**
 * The list is stale after this many pulls in a row have failed since the last good one. With the
 * defaults (10s interval, 5s timeout) that is 30 to 45 seconds without an answer.
 */
export const STALE_AFTER_FAILURES = 3;

/**
 * Sent on every request. CrowdSec reads `<type>/<version>` from it to describe the bouncer
 * (`cscli bouncers list`); keep that shape.
 */
export const USER_AGENT = 'sluice-bouncer/v0.1.0';

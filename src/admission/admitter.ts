import type { Endpoint } from '../core/address.js';
import type { RejectReason } from '../observe/events.js';

/**
 * An admission step that runs before caps and rates, once per new session or connection, with
 * the canonical client address (ACL, country, threat intel). Returns a reason to refuse, or
 * undefined to admit. Must be synchronous and cheap: it runs on the accept path.
 */
export type Admitter = (client: Endpoint, route: string) => RejectReason | undefined;

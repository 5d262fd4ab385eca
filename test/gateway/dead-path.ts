// What the tests of connections that died on the way (a NAT that lost their mapping) share:
// a gateway that records its events, an echo through the exposure, and the keepalive timers of
// established sockets.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { systemClock } from '../../src/core/clock.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { aclAdmitter } from '../../src/admission/acl-admitter.js';
import type { StreamDatapath } from '../../src/datapath/stream-datapath.js';
import { readAll, tcpConnect } from '../helpers/net.js';
import { gatewayConfig } from './expose-helpers.js';

/** A gateway on `dp` whose events land in `seen`; `nextFlowId` is shared with the agent. */
export async function recordingGateway(t: TestContext, dp: StreamDatapath): Promise<{ gateway: Gateway; seen: SluiceEvent[]; nextFlowId: () => number }> {
  const events = new EventStream((err) => {
    throw err;
  });
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => seen.push(e));
  let flow = 0;
  const nextFlowId = () => ++flow;
  const gateway = await Gateway.start(gatewayConfig(), {
    clock: systemClock,
    events,
    routeDeps: (route) => ({ admit: aclAdmitter(route.acl, undefined), nextFlowId, streamDatapath: dp }),
    streamDatapath: dp,
  });
  t.after(() => gateway.close());
  return { gateway, seen, nextFlowId };
}

/** `bytes` random bytes through an echo at `port`; asserts they came back whole. */
export async function echo(t: TestContext, port: number, bytes: number): Promise<void> {
  const sent = randomBytes(bytes);
  const c = await tcpConnect(t, port);
  c.end(sent);
  assert.deepEqual(await readAll(c, 15_000), sent, 'the echo came back whole');
}

/** Keepalive timers (seconds left) of the established sockets `filter` selects, from `ss -tno`. */
export function keepaliveTimers(filter: string): number[] {
  const out = execFileSync('ss', ['-tnoH', 'state', 'established', filter], { encoding: 'utf8' });
  return [...out.matchAll(/timer:\(keepalive,(?:(\d+)min)?(\d+(?:\.\d+)?)?(m?s)?ec/g)].map((m) => Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0) / (m[3] === 'ms' ? 1000 : 1));
}

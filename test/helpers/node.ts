import type { TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import type { SluiceConfig } from '../../src/config/types.js';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { RouteSet, type RouteSetDeps } from '../../src/root/route-set.js';
import { DirectStreamDialer } from '../../src/upstream/direct/tcp-dialer.js';
import { DirectDatagramDialer } from '../../src/upstream/direct/udp-dialer.js';

export function config(yaml: string): SluiceConfig {
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(`test config invalid: ${JSON.stringify(r.issues)}`);
  return r.config;
}

/** Starts a node on real sockets with an event recorder; destroyed in t.after. */
export async function startNode(t: TestContext, yaml: string, deps: Partial<RouteSetDeps> & { clock?: Clock } = {}) {
  const events = deps.events ?? new EventStream((err) => {
    throw err;
  });
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const node = await RouteSet.start(config(yaml), {
    clock: deps.clock ?? systemClock,
    events,
    streamDialer: deps.streamDialer ?? new DirectStreamDialer(),
    datagramDialer: deps.datagramDialer ?? new DirectDatagramDialer(undefined, deps.udpDatapath),
    udpDatapath: deps.udpDatapath,
    streamDatapath: deps.streamDatapath,
    admit: deps.admit,
    geo: deps.geo,
  });
  t.after(() => node.destroy());
  const port = (route: string) => node.route(route)!.local.port;
  const ofType = <K extends SluiceEvent['type']>(type: K) => seen.filter((e): e is Extract<SluiceEvent, { type: K }> => e.type === type);
  return { node, events, seen, port, ofType };
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '../../src/core/address.js';
import { SluiceError } from '../../src/core/errors.js';
import { EventStream, type EndReason, type SluiceEvent } from '../../src/observe/events.js';
import type { Admitter } from '../../src/admission/admitter.js';
import { SessionShell, type SessionSide, type ShellFlow } from '../../src/session/session-shell.js';
import type { SessionPolicy } from '../../src/session/session-policy.js';
import { ManualClock } from '../helpers/manual-clock.js';

const NO_RATE = { perSecond: 0, burst: 0 };

function policy(maxPerRoute: number, maxPerSource = 0): SessionPolicy {
  return { name: 'r', upstream: { host: 'up.test', port: 53 }, origin: undefined, limits: { maxPerRoute, maxPerSource, rate: NO_RATE, ratePerSource: NO_RATE }, bandwidth: undefined, idleTimeoutMs: 1000 };
}

class Flow implements ShellFlow {
  readonly proto = 'udp' as const;
  readonly route = 'r';
  wouldEndNoted = false;
  upstream: Endpoint | undefined;
  opening = true;
  ended: [EndReason, string | undefined] | undefined;
  constructor(
    readonly id: number,
    readonly client: Endpoint,
    readonly source: string,
    readonly startedAt: number,
    readonly startedWall: number,
  ) {}
}

/** A side holding flows in a set, as the TCP route does. */
function harness(p = policy(0), admit?: Admitter) {
  const clock = new ManualClock();
  const events = new EventStream();
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const flows = new Set<Flow>();
  const side: SessionSide<Flow> = {
    get size() {
      return flows.size;
    },
    flows: () => flows,
    opening: (f) => f.opening,
    end: (f, reason, detail) => {
      if (!flows.delete(f)) return;
      f.ended = [reason, detail];
      shell.released(f.source);
    },
  };
  const shell: SessionShell<SessionPolicy, Flow> = new SessionShell(p, 'udp', { clock, events, ...(admit ? { admit } : {}) }, side);
  let ids = 0;
  const open = (address: string, port = 1000): Flow | undefined => {
    const client: Endpoint = { address, port, family: 4 };
    const source = shell.admit(client);
    if (source === undefined) return undefined;
    const f = new Flow(++ids, client, source, clock.now(), clock.wallNow());
    flows.add(f);
    return f;
  };
  return { clock, shell, seen, flows, open };
}

test('shell admission: caps refuse with a reason (and the source when it is a prefix), draining refuses everyone; each refusal is one session-rejected event', async () => {
  const h = harness(policy(2, 1));
  assert.ok(h.open('192.0.2.1'));
  assert.equal(h.open('192.0.2.1', 2), undefined, 'per-source cap');
  assert.ok(h.open('192.0.2.2'));
  assert.equal(h.open('192.0.2.3'), undefined, 'route cap');
  const drained = h.shell.drain();
  assert.equal(h.open('192.0.2.4'), undefined, 'draining');
  const rejected = h.seen.filter((e) => e.type === 'session-rejected').map((e) => e.type === 'session-rejected' && `${e.client.address}:${e.reason}:${e.proto}`);
  assert.deepEqual(rejected, ['192.0.2.1:limit-source-sessions:udp', '192.0.2.3:limit-route-sessions:udp', '192.0.2.4:draining:udp']);
  let done = false;
  void drained.then(() => (done = true));
  h.shell.close('shutdown');
  await drained;
  assert.ok(done, 'drain resolves once the last flow is released');
  assert.equal(h.shell.limits.active, 0, 'every admission released');
});

test('shell events: started emits session-started then dial-ok with the latency since the dial; a failed dial is dial-error and ends as upstream-unreachable or peer-offline', () => {
  const h = harness();
  const f = h.open('192.0.2.1')!;
  h.clock.advance(7);
  h.shell.started(f, { address: '198.51.100.1', port: 53, family: 4 }, 2);
  const g = h.open('192.0.2.2')!;
  h.clock.advance(3);
  assert.equal(h.shell.dialFailed(g, new SluiceError('SLUICE_ERR_DIAL_FAILED', 'refused'), g.startedAt), 'upstream-unreachable');
  assert.equal(h.shell.dialFailed(g, new SluiceError('SLUICE_ERR_PEER_OFFLINE', 'gone'), g.startedAt), 'peer-offline');
  h.shell.ended(f, 'idle-timeout', { bytesFromClient: 1, packetsFromClient: 1, bytesToClient: 2, packetsToClient: 1 }, 'because');
  const got = h.seen.map((e) => {
    if (e.type === 'dial-ok') return `dial-ok:${e.latencyMs}`;
    if (e.type === 'dial-error') return `dial-error:${e.code}:${e.upstream}:${e.latencyMs}`;
    if (e.type === 'session-ended') return `ended:${e.reason}:${e.durationMs}:${e.detail}:${e.counters.bytesToClient}`;
    return e.type;
  });
  assert.deepEqual(got, ['session-started', 'dial-ok:5', 'dial-error:SLUICE_ERR_DIAL_FAILED:up.test:53:3', 'dial-error:SLUICE_ERR_PEER_OFFLINE:up.test:53:3', 'ended:idle-timeout:10:because:2']);
});

test('shell reverdict: a refused flow still opening is reported as a refusal and ended with the verdict; an open one is only ended; observe-only verdicts are recorded once', () => {
  let verdict: ReturnType<Admitter>;
  const h = harness(policy(0), () => verdict);
  const opening = h.open('192.0.2.1')!;
  const open = h.open('192.0.2.2')!;
  open.opening = false;
  verdict = { reason: 'banned', detail: 'rule x', observeOnly: true };
  assert.deepEqual(h.shell.reverdict(), { checked: 2, ended: 0, wouldEnd: 2 });
  assert.deepEqual(h.shell.reverdict(), { checked: 2, ended: 0, wouldEnd: 0 });
  verdict = { reason: 'banned', detail: 'rule x' };
  assert.deepEqual(h.shell.reverdict(), { checked: 2, ended: 2, wouldEnd: 0 });
  assert.deepEqual(opening.ended, ['banned', 'rule x']);
  assert.deepEqual(open.ended, ['banned', 'rule x']);
  const rejected = h.seen.filter((e) => e.type === 'session-rejected' && !e.observeOnly).map((e) => e.type === 'session-rejected' && e.client.address);
  assert.deepEqual(rejected, ['192.0.2.1'], 'only the flow that never started is reported refused');
});

test('shell close: aborts the dial signal and ends every flow with the reason; update swaps the limits for new admissions', () => {
  const h = harness(policy(1));
  const f = h.open('192.0.2.1')!;
  assert.equal(h.open('192.0.2.2'), undefined);
  h.shell.update(policy(2), undefined);
  assert.ok(h.open('192.0.2.2'), 'the new cap applies');
  assert.equal(h.shell.signal.aborted, false);
  h.shell.close('shutdown');
  assert.equal(h.shell.signal.aborted, true);
  assert.deepEqual(f.ended, ['shutdown', undefined]);
  assert.equal(h.flows.size, 0);
  assert.equal(h.shell.draining, true);
});

// Member states (transition table), active checks on an injected clock (rise/fall/jitter/rate),
// passive ejection with backoff, backups, reload draining, refusal when no member takes sessions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventStream, type SluiceEvent } from '../../../src/observe/events.js';
import { isSluiceError } from '../../../src/core/errors.js';
import { canMove } from '../../../src/core/state-machine.js';
import { MEMBER_TRANSITIONS, MemberHealth } from '../../../src/upstream/pool/member-state.js';
import { UpstreamPool } from '../../../src/upstream/pool/pool.js';
import type { MemberSpec } from '../../../src/upstream/pool/member.js';
import { DEFAULT_PASSIVE, type PoolSettings } from '../../../src/upstream/pool/pool-settings.js';
import type { CheckOutcome } from '../../../src/upstream/pool/member-state.js';
import { ManualClock } from '../../helpers/manual-clock.js';

const turn = () => new Promise((r) => setImmediate(r));

/** A member whose checks answer what `answer` says, counting them. */
function member(key: string, opts: { weight?: number; backup?: boolean; probe?: boolean } = {}) {
  const m = { answer: 'ok' as CheckOutcome, probes: 0 };
  const spec: MemberSpec = {
    key,
    label: key,
    weight: opts.weight ?? 1,
    backup: opts.backup ?? false,
    ways: opts.probe === false ? {} : { probe: async () => (m.probes++, m.answer) },
  };
  return Object.assign(m, { spec });
}

const settings = (over: Partial<PoolSettings> = {}): PoolSettings => ({
  balance: 'round-robin',
  check: { intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3, jitter: 0 },
  passive: DEFAULT_PASSIVE,
  failover: 'move',
  ...over,
});

function pool(members: ReturnType<typeof member>[], s = settings()) {
  const clock = new ManualClock();
  const events = new EventStream();
  const seen: Extract<SluiceEvent, { type: 'pool-member' }>[] = [];
  events.subscribe((e) => e.type === 'pool-member' && seen.push(e));
  const p = new UpstreamPool('game', members.map((m) => m.spec), s, { clock, events, random: () => 0 });
  return { p, clock, seen };
}

/** Advances the clock in steps, letting each check's promise settle. */
async function run(clock: ManualClock, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await turn();
  }
}

test('transition table: draining is final, down needs rise checks to come back, ejected comes back', () => {
  assert.deepEqual(MEMBER_TRANSITIONS.draining, []);
  assert.ok(canMove(MEMBER_TRANSITIONS, 'down', 'up'));
  assert.ok(!canMove(MEMBER_TRANSITIONS, 'down', 'ejected'));
  const h = new MemberHealth('m', { rise: 2, fall: 3 }, 'up');
  assert.equal(h.checked('failed'), undefined);
  assert.equal(h.checked('failed'), undefined);
  assert.equal(h.checked('failed'), 'down');
  assert.equal(h.checked('ok'), undefined);
  assert.equal(h.checked('ok'), 'up');
  assert.equal(h.checked('refused'), 'down', 'ICMP unreachable: down at once');
  assert.equal(h.drain(), 'draining');
  assert.equal(h.checked('ok'), undefined);
});

test('checks: fall failures take a member down, rise passes bring it back; events name each move', async () => {
  const a = member('a');
  const b = member('b');
  const { p, clock, seen } = pool([a, b]);
  await run(clock, 1000);
  assert.equal(p.member('a')!.state, 'up');
  a.answer = 'failed';
  await run(clock, 3000);
  assert.equal(p.member('a')!.state, 'down');
  for (let i = 0; i < 10; i++) assert.equal(p.pick(undefined).key, 'b');
  a.answer = 'ok';
  await run(clock, 1000);
  assert.equal(p.member('a')!.state, 'down', 'one pass is not rise=2');
  await run(clock, 1000);
  assert.equal(p.member('a')!.state, 'up');
  assert.deepEqual(
    seen.filter((e) => e.member === 'a').map((e) => `${e.from}>${e.to}:${e.cause}`),
    ['unknown>up:check-passed', 'up>down:check-failed', 'down>up:check-passed'],
  );
  p.close();
});

test('checks never run faster than the interval, with jitter only adding delay', async () => {
  const a = member('a');
  const clock = new ManualClock();
  let r = 0;
  const p = new UpstreamPool('r', [a.spec], settings({ check: { intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 1, jitter: 0.5 } }), { clock, random: () => (r = (r + 0.37) % 1) });
  await run(clock, 60_000, 50);
  // 60 s at one per second at most; jitter up to +50% makes it fewer, never more.
  assert.ok(a.probes <= 60 && a.probes >= 38, String(a.probes));
  p.close();
});

test('a probe that hangs is aborted at the timeout and counts as failed; one probe in flight per member', async () => {
  let inFlight = 0;
  let most = 0;
  const spec: MemberSpec = {
    key: 'h',
    label: 'h',
    weight: 1,
    backup: false,
    ways: {
      probe: (signal) =>
        new Promise<CheckOutcome>((resolve) => {
          inFlight++;
          most = Math.max(most, inFlight);
          signal.addEventListener('abort', () => (inFlight--, resolve('failed')));
        }),
    },
  };
  const clock = new ManualClock();
  const p = new UpstreamPool('r', [spec], settings({ check: { intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 2, jitter: 0 } }), { clock, random: () => 0 });
  await run(clock, 5000);
  assert.equal(most, 1);
  assert.equal(p.member('h')!.state, 'down');
  assert.equal(p.member('h')!.last?.outcome, 'failed');
  p.close();
});

test('passive ejection: out for the backoff, doubling on a repeat, back after it', async () => {
  const a = member('a', { probe: false });
  const b = member('b', { probe: false });
  const { p, clock, seen } = pool([a, b], settings({ check: undefined, passive: { ...DEFAULT_PASSIVE, ejectMs: 1000, maxEjectMs: 3000 } }));
  const m = p.member('a')!;
  p.failed(m, 'dial-failed');
  assert.equal(m.state, 'ejected');
  clock.advance(999);
  assert.equal(m.state, 'ejected');
  clock.advance(1);
  assert.equal(m.state, 'up');
  p.failed(m, 'dial-failed');
  clock.advance(1999);
  assert.equal(m.state, 'ejected', 'second ejection in a row: 2 s');
  clock.advance(1);
  assert.equal(m.state, 'up');
  m.worked();
  p.failed(m, 'silent');
  clock.advance(1000);
  assert.equal(m.state, 'up', 'a flow that worked starts the backoff over');
  assert.deepEqual(seen.map((e) => e.cause), ['dial-failed', 'ejection-ended', 'dial-failed', 'ejection-ended', 'silent', 'ejection-ended']);
  p.close();
});

test('backups take sessions only while no primary does; none at all is no-healthy-upstream, counted', () => {
  const a = member('a', { probe: false });
  const z = member('z', { probe: false, backup: true });
  const { p } = pool([a, z], settings({ check: undefined }));
  for (let i = 0; i < 5; i++) assert.equal(p.pick(undefined).key, 'a');
  p.failed(p.member('a')!, 'icmp-error');
  assert.equal(p.pick(undefined).key, 'z');
  p.failed(p.member('z')!, 'icmp-error');
  assert.throws(() => p.pick(undefined), (e) => isSluiceError(e, 'SLUICE_ERR_NO_HEALTHY_UPSTREAM'));
  assert.throws(() => p.pick(undefined));
  assert.equal(p.view().refused, 2);
  p.close();
});

test('reload: a kept member keeps its count, a removed one drains until its last flow ends, a new one joins', () => {
  const a = member('a', { probe: false });
  const b = member('b', { probe: false });
  const c = member('c', { probe: false });
  const { p, seen } = pool([a, b], settings({ check: undefined, balance: 'least-conn' }));
  const onA = p.pick(undefined);
  const onB = p.pick(undefined);
  assert.deepEqual([onA.key, onB.key].sort(), ['a', 'b']);
  p.update([a.spec, c.spec], settings({ check: undefined, balance: 'least-conn' }));
  const byKey = new Map(p.view().members.map((m) => [m.key, m]));
  assert.equal(byKey.get('b')!.health, 'draining');
  assert.equal(byKey.get('b')!.active, 1);
  for (let i = 0; i < 4; i++) assert.notEqual(p.pick(undefined).key, 'b');
  p.release(onB);
  assert.ok(!p.view().members.some((m) => m.key === 'b'), 'forgotten once drained');
  assert.equal(p.member('a'), onA, 'kept member is the same object (flows stay)');
  assert.deepEqual(seen.map((e) => `${e.member}:${e.to}`), ['b:draining']);
  p.close();
});

test('an ejected member with active checks is back after rise passing checks, before its backoff ends', async () => {
  const a = member('a');
  const { p, clock, seen } = pool([a]);
  await run(clock, 1000);
  p.failed(p.member('a')!, 'icmp-error');
  assert.equal(p.member('a')!.state, 'ejected');
  await run(clock, 2000);
  assert.equal(p.member('a')!.state, 'up');
  assert.deepEqual(seen.map((e) => `${e.to}:${e.cause}`), ['up:check-passed', 'ejected:icmp-error', 'up:check-passed']);
  p.close();
});

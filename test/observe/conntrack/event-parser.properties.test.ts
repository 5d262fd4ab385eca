// fast-check properties for the conntrack line parser: every generated line in the tool's own
// layout parses back to what was generated, and nothing at all (random text, token soup, mutated
// real lines) makes it throw anything but ConntrackLineError.
// Fixed seed for repeatable runs; FC_SEED / FC_RUNS explore more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalIp } from '../../../src/core/address.js';
import { ConntrackLineError, parseEventLine, type ConntrackEvent, type ConntrackTuple } from '../../../src/observe/conntrack/index.js';
import { captured, loopback } from './captured-lines.js';

function fcParams(defaultRuns: number): { seed: number; numRuns: number } {
  const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : 0x5eed;
  const numRuns = process.env.FC_RUNS !== undefined ? Number(process.env.FC_RUNS) : defaultRuns;
  return { seed, numRuns };
}

/** Parses, or returns the typed error; anything else thrown fails the property. */
function parseOrError(line: string): ConntrackEvent | ConntrackLineError {
  try {
    return parseEventLine(line);
  } catch (err) {
    if (err instanceof ConntrackLineError) return err;
    throw err;
  }
}

/** What a successful parse must always satisfy, whatever the input. */
function wellFormed(ev: ConntrackEvent): void {
  for (const t of [ev.orig, ev.reply]) {
    for (const a of [t.src, t.dst]) assert.equal(canonicalIp(a)?.address, a);
    for (const p of [t.sport, t.dport, t.icmpId]) if (p !== undefined) assert.ok(Number.isInteger(p) && p >= 0 && p <= 65535);
    for (const p of [t.icmpType, t.icmpCode]) if (p !== undefined) assert.ok(Number.isInteger(p) && p >= 0 && p <= 255);
    for (const c of [t.packets, t.bytes]) if (c !== undefined) assert.ok(Number.isInteger(c) && c >= 0);
  }
  assert.ok(Number.isInteger(ev.id) && ev.id >= 0 && ev.id <= 0xffffffff);
  if (ev.mark !== undefined) assert.ok(ev.mark >= 0 && ev.mark <= 0xffffffff);
}

// ---- a generator of events in libnetfilter_conntrack's `__snprintf_conntrack_default` layout ----

interface Gen {
  type: 'NEW' | 'UPDATE' | 'DESTROY';
  ts?: [number, number];
  extended: boolean;
  v6: boolean;
  proto: { name: string; num: number; kind: 'ports' | 'icmp' | 'gre' | 'none' };
  timeout?: number;
  state?: string;
  orig: GenTuple;
  reply: GenTuple;
  unreplied: boolean;
  assured: boolean;
  mark?: number;
  delta?: number;
  id: number;
  userspace?: string;
}
interface GenTuple {
  src4: string;
  dst4: string;
  src6: string;
  dst6: string;
  a: number;
  b: number;
  icmpId: number;
  counters?: [number, number];
}

const u16 = fc.integer({ min: 0, max: 65535 });
const u8 = fc.integer({ min: 0, max: 255 });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const counter = fc.maxSafeNat();
const tuple: fc.Arbitrary<GenTuple> = fc.record(
  { src4: fc.ipV4(), dst4: fc.ipV4(), src6: fc.ipV6(), dst6: fc.ipV6(), a: u16, b: u16, icmpId: u16, counters: fc.tuple(counter, counter) },
  { requiredKeys: ['src4', 'dst4', 'src6', 'dst6', 'a', 'b', 'icmpId'] },
);
const proto = fc.constantFrom(
  { name: 'tcp', num: 6, kind: 'ports' as const },
  { name: 'udp', num: 17, kind: 'ports' as const },
  { name: 'udplite', num: 136, kind: 'ports' as const },
  { name: 'sctp', num: 132, kind: 'ports' as const },
  { name: 'dccp', num: 33, kind: 'ports' as const },
  { name: 'icmp', num: 1, kind: 'icmp' as const },
  { name: 'icmpv6', num: 58, kind: 'icmp' as const },
  { name: 'gre', num: 47, kind: 'gre' as const },
  { name: 'unknown', num: 253, kind: 'none' as const },
);
const gen: fc.Arbitrary<Gen> = fc.record(
  {
    type: fc.constantFrom('NEW' as const, 'UPDATE' as const, 'DESTROY' as const),
    ts: fc.tuple(fc.integer({ min: 0, max: 4_000_000_000 }), fc.integer({ min: 0, max: 999_999 })),
    extended: fc.boolean(),
    v6: fc.boolean(),
    proto,
    timeout: fc.integer({ min: 0, max: 432_000 }),
    state: fc.constantFrom('SYN_SENT', 'ESTABLISHED', 'TIME_WAIT', 'CLOSE', 'NONE'),
    orig: tuple,
    reply: tuple,
    unreplied: fc.boolean(),
    assured: fc.boolean(),
    mark: fc.integer({ min: 1, max: 0xffffffff }),
    delta: fc.integer({ min: 0, max: 10_000_000 }),
    id: u32,
    userspace: fc.constantFrom('portid=1 progname=conntrack', 'portid=9', 'portid=2 progname=my [odd] prog=x'),
  },
  { requiredKeys: ['type', 'extended', 'v6', 'proto', 'orig', 'reply', 'unreplied', 'assured', 'id'] },
);

function formatTuple(g: Gen, t: GenTuple, dir: 'orig' | 'reply'): string {
  let s = g.v6 ? `src=${t.src6} dst=${t.dst6} ` : `src=${t.src4} dst=${t.dst4} `;
  if (g.proto.kind === 'ports') s += `sport=${t.a} dport=${t.b} `;
  else if (g.proto.kind === 'icmp') s += `type=${t.a & 0xff} code=${t.b & 0xff} id=${t.icmpId} `;
  else if (g.proto.kind === 'gre') s += `srckey=0x${t.a.toString(16)} dstkey=0x${t.b.toString(16)} `;
  if (t.counters) s += `packets=${t.counters[0]} bytes=${t.counters[1]} `;
  if (dir === 'orig' && g.unreplied) s += '[UNREPLIED] ';
  return s;
}

function formatLine(g: Gen): string {
  let s = g.ts ? `[${g.ts[0]}.${String(g.ts[1]).padStart(6, '0')}]\t` : '';
  s += `${`[${g.type}]`.padStart(9)} `;
  if (g.extended) s += `${(g.v6 ? 'ipv6' : 'ipv4').padEnd(8)} ${g.v6 ? 10 : 2} `;
  s += `${g.proto.name.padEnd(8)} ${g.proto.num} `;
  if (g.timeout !== undefined) s += `${g.timeout} `;
  if (g.state !== undefined) s += `${g.state} `;
  s += formatTuple(g, g.orig, 'orig') + formatTuple(g, g.reply, 'reply');
  if (g.assured) s += '[ASSURED] ';
  if (g.mark !== undefined) s += `mark=${g.mark} `;
  if (g.delta !== undefined) s += `delta-time=${g.delta} `;
  s += `use=1 id=${g.id}`;
  if (g.userspace !== undefined) s += ` [USERSPACE] ${g.userspace}`;
  return s;
}

function expected(g: Gen): ConntrackEvent {
  const protos: Record<number, ConntrackEvent['proto']> = { 6: 'tcp', 17: 'udp', 136: 'udplite', 132: 'sctp', 33: 'dccp', 1: 'icmp', 58: 'icmpv6' };
  const t = (x: GenTuple): ConntrackTuple => {
    const out: Record<string, unknown> = { src: canonicalIp(g.v6 ? x.src6 : x.src4)!.address, dst: canonicalIp(g.v6 ? x.dst6 : x.dst4)!.address };
    if (g.proto.kind === 'ports') Object.assign(out, { sport: x.a, dport: x.b });
    if (g.proto.kind === 'icmp') Object.assign(out, { icmpType: x.a & 0xff, icmpCode: x.b & 0xff, icmpId: x.icmpId });
    if (x.counters) Object.assign(out, { packets: x.counters[0], bytes: x.counters[1] });
    return out as unknown as ConntrackTuple;
  };
  const ev: Record<string, unknown> = {
    type: g.type.toLowerCase(),
    family: g.v6 ? 6 : 4,
    protoNum: g.proto.num,
    proto: protos[g.proto.num] ?? 'other',
    id: g.id,
    orig: t(g.orig),
    reply: t(g.reply),
    assured: g.assured,
    unreplied: g.unreplied,
    userspace: g.userspace !== undefined,
  };
  if (g.ts) ev.timestampMs = g.ts[0] * 1000 + Math.floor(g.ts[1] / 1000);
  if (g.state !== undefined) ev.state = g.state;
  if (g.mark !== undefined) ev.mark = g.mark;
  if (g.delta !== undefined) ev.deltaTimeS = g.delta;
  return ev as unknown as ConntrackEvent;
}

test('property: a line in the tool layout parses back to the generated event', () => {
  fc.assert(
    fc.property(gen, (g) => {
      assert.deepEqual(parseEventLine(formatLine(g)), expected(g));
    }),
    fcParams(3000),
  );
});

test('property: arbitrary text never throws anything but ConntrackLineError', () => {
  const text = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.string({ unit: fc.constantFrom('[', ']', '=', ' ', '\t', 'a', '1', '.', ':', 's', 'r', 'c', 'i', 'd', '-'), maxLength: 200 }),
  );
  fc.assert(
    fc.property(text, (line) => {
      const r = parseOrError(line);
      if (!(r instanceof ConntrackLineError)) wellFormed(r);
    }),
    fcParams(5000),
  );
});

test('property: token soup from the real vocabulary never throws anything but ConntrackLineError', () => {
  const vocabulary = [
    '[NEW]', '[UPDATE]', '[DESTROY]', '[1795306106.639539]', 'ipv4', 'ipv6', 'unknown', '2', '10', '6', '17', '1', '58', 'tcp', 'udp', 'icmp',
    'icmpv6', 'gre', '120', 'SYN_SENT', 'TIME_WAIT', 'src=10.77.0.1', 'dst=10.77.0.2', 'src=fd77::1', 'dst=fd77::2', 'sport=1', 'dport=65535',
    'type=8', 'code=0', 'id=23761', 'id=4294967295', 'packets=5', 'bytes=18446744073709551615', '[UNREPLIED]', '[ASSURED]', 'mark=16',
    'delta-time=3', 'use=1', 'zone=1', '[USERSPACE]', 'portid=1', '[start=Sun Nov 22 00:03:54 2026]', 'id=', 'src=', '=', '[', ']', '[]',
    'labels=a,b', 'src=::ffff:1.2.3.4', 'sport=99999', 'id=-1', 'constructor=1',
  ];
  const soup = fc.array(fc.constantFrom(...vocabulary), { maxLength: 40 }).map((w) => w.join(' '));
  fc.assert(
    fc.property(soup, (line) => {
      const r = parseOrError(line);
      if (!(r instanceof ConntrackLineError)) wellFormed(r);
    }),
    fcParams(5000),
  );
});

test('property: real and generated lines with random edits never throw anything but ConntrackLineError', () => {
  const real = fc.constantFrom(...Object.values(captured), ...loopback);
  const line = fc.oneof(real, gen.map(formatLine));
  const edit = fc.record({
    at: fc.nat(),
    len: fc.integer({ min: 0, max: 20 }),
    insert: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('[', ']', ' ', '=', 'id=1 ', 'src=1.1.1.1 ', '\t', '0')),
  });
  fc.assert(
    fc.property(line, fc.array(edit, { minLength: 1, maxLength: 4 }), (l, edits) => {
      let s: string = l;
      for (const e of edits) {
        const at = e.at % (s.length + 1);
        s = s.slice(0, at) + e.insert + s.slice(at + e.len);
      }
      const r = parseOrError(s);
      if (!(r instanceof ConntrackLineError)) wellFormed(r);
    }),
    fcParams(5000),
  );
});

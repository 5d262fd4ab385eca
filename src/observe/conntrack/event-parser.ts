import net from 'node:net';
import { canonicalIp, type Family } from '../../core/address.js';
import { ConntrackLineError, type ConntrackEvent, type ConntrackEventType, type ConntrackProto } from './event.js';

/**
 * Parser for one line of `conntrack -E -o extended,id,timestamp` (conntrack-tools 1.4.x, printed
 * by libnetfilter_conntrack's `__snprintf_conntrack_default`, then the tool's own
 * ` [USERSPACE] portid=N progname=NAME` suffix):
 *
 *   [1795305783.825281]\t[DESTROY] ipv4     2 tcp      6 119 TIME_WAIT src=127.0.0.1 dst=127.0.0.1
 *   sport=47986 dport=5000 packets=5 bytes=274 src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=47986
 *   packets=3 bytes=164 [ASSURED] id=529253858 [USERSPACE] portid=17264 progname=conntrack
 *
 * Why this format rather than `-o xml`: the XML output leaves ICMP type and code out (empty
 * `<layer4>`), wraps the stream in a document that is never closed when the tool is killed, and
 * still appends the same non-XML `[USERSPACE]` suffix after `</flow>`.
 *
 * The line is read as tokens: `key=value` words and `[...]` groups (which may hold spaces, as in
 * `[start=Sun Nov 22 00:03:54 2026]`). The first `src=` opens the original tuple, the second the
 * reply tuple. `id=` is ambiguous: inside an ICMP tuple it follows `code=` and is the echo
 * identifier; otherwise it is the conntrack id. Unknown keys and flags are skipped so a newer
 * tool version does not stop the source; anything else that does not fit throws
 * ConntrackLineError, and nothing else is ever thrown.
 */
export function parseEventLine(line: string): ConntrackEvent {
  if (line.length > MAX_LINE) throw new ConntrackLineError('too-long', `${line.length} characters (limit ${MAX_LINE})`, MAX_LINE);
  const tokens = tokenize(line);
  if (tokens.length === 0) throw new ConntrackLineError('empty', 'no tokens', 0);
  let i = 0;
  const at = () => tokens[i]?.offset ?? line.length;

  let timestampMs: number | undefined;
  const first = tokens[0]!;
  if (first.bracket) {
    const m = TIMESTAMP.exec(first.text);
    if (m) {
      timestampMs = Number(m[1]) * 1000 + Math.floor(Number(`0.${m[2]}`) * 1000);
      i++;
    }
  }

  const typeTok = tokens[i];
  const type = typeTok?.bracket ? EVENT_TYPES.get(typeTok.text) : undefined;
  if (!type) throw new ConntrackLineError('bad-head', 'expected [NEW], [UPDATE] or [DESTROY]', at());
  i++;

  let l3: Family | undefined;
  const w0 = word(tokens[i]);
  // `-o extended` adds "ipv4 2" before "tcp 6"; without it the first pair is the layer 4 one
  // (and both layers print an unknown protocol as "unknown").
  const extended = L4_NAME.test(word(tokens[i + 2]) ?? '') && DIGITS.test(word(tokens[i + 3]) ?? '');
  if (extended && (w0 === 'ipv4' || w0 === 'ipv6' || w0 === 'unknown')) {
    const n = smallInt(word(tokens[i + 1]), 255);
    if (n === undefined) throw new ConntrackLineError('bad-head', 'expected the layer 3 protocol number', tokens[i + 1]?.offset ?? line.length);
    if (n !== 2 && n !== 10) throw new ConntrackLineError('bad-value', `layer 3 protocol ${n} is neither IPv4 (2) nor IPv6 (10)`, at());
    l3 = n === 2 ? 4 : 6;
    i += 2;
  }
  if (!L4_NAME.test(word(tokens[i]) ?? '')) throw new ConntrackLineError('bad-head', 'expected the layer 4 protocol name', at());
  const protoNum = smallInt(word(tokens[i + 1]), 255);
  if (protoNum === undefined) throw new ConntrackLineError('bad-head', 'expected the layer 4 protocol number', tokens[i + 1]?.offset ?? line.length);
  i += 2;
  if (DIGITS.test(word(tokens[i]) ?? '')) i++; // timeout in seconds: not recorded
  let state: string | undefined;
  const maybeState = word(tokens[i]);
  if (maybeState !== undefined && STATE.test(maybeState)) {
    state = maybeState;
    i++;
  }

  const tuples: MutableTuple[] = [{}, {}];
  let phase = 0; // 0 original tuple, 1 reply tuple, 2 after both
  let id: number | undefined;
  let mark: number | undefined;
  let deltaTimeS: number | undefined;
  let assured = false;
  let unreplied = false;
  let userspace = false;

  for (; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (tok.bracket) {
      if (tok.text === 'UNREPLIED') unreplied = true;
      else if (tok.text === 'ASSURED') assured = true;
      else if (tok.text === 'USERSPACE') {
        // The rest (portid, progname) is the tool's, and a program name may hold anything.
        userspace = true;
        break;
      }
      continue;
    }
    const eq = tok.text.indexOf('=');
    if (eq <= 0 || !KEY.test(tok.text.slice(0, eq))) throw new ConntrackLineError('bad-token', `unexpected "${clip(tok.text)}"`, tok.offset);
    const key = tok.text.slice(0, eq);
    const value = tok.text.slice(eq + 1);
    const bad = (what: string): never => {
      throw new ConntrackLineError('bad-value', `${key}=${clip(value)} is not ${what}`, tok.offset + eq + 1);
    };
    const dup = (): never => {
      throw new ConntrackLineError('duplicate-field', `${key} appears twice`, tok.offset);
    };

    if (key === 'src') {
      if (phase === 0 && tuples[0]!.src !== undefined) phase = 1;
      if (phase > 1 || tuples[phase]!.src !== undefined) throw new ConntrackLineError('duplicate-field', 'a third tuple', tok.offset);
      tuples[phase]!.src = address(value) ?? bad('an IP address');
      continue;
    }
    if (key === 'id') {
      const t = phase < 2 ? tuples[phase]! : undefined;
      if (t && t.icmpCode !== undefined && t.icmpId === undefined) {
        t.icmpId = smallInt(value, 0xffff) ?? bad('an ICMP identifier (0-65535)');
        continue;
      }
      if (id !== undefined) dup();
      id = smallInt(value, 0xffffffff) ?? bad('a conntrack id (uint32)');
      phase = 2;
      continue;
    }
    const field = TUPLE_KEYS.get(key);
    if (field) {
      if (phase > 1) throw new ConntrackLineError('bad-token', `${key} after both tuples`, tok.offset);
      const t = tuples[phase]!;
      if (t[field] !== undefined) dup();
      if (field === 'dst') t.dst = address(value) ?? bad('an IP address');
      else if (field === 'packets' || field === 'bytes') t[field] = counter(value) ?? bad('a counter');
      else t[field] = smallInt(value, field === 'sport' || field === 'dport' ? 0xffff : 0xff) ?? bad('in range');
      continue;
    }
    if (TAIL_KEYS.has(key)) {
      phase = 2;
      if (key === 'mark') {
        if (mark !== undefined) dup();
        mark = smallInt(value, 0xffffffff) ?? bad('a mark (uint32)');
      } else if (key === 'delta-time') {
        if (deltaTimeS !== undefined) dup();
        deltaTimeS = counter(value) ?? bad('a number of seconds');
      }
      continue;
    }
    // Unknown key (zone-orig, srckey, a newer tool's field): skipped on purpose.
  }

  const [o, r] = tuples as [MutableTuple, MutableTuple];
  const missing = (what: string): never => {
    throw new ConntrackLineError('missing-field', what, line.length);
  };
  if (o.src === undefined || o.dst === undefined) missing('original src/dst');
  if (r.src === undefined || r.dst === undefined) missing('reply src/dst');
  if (id === undefined) missing('conntrack id (run the tool with -o id)');
  const family = o.src!.family;
  if (o.dst!.family !== family || r.src!.family !== family || r.dst!.family !== family || (l3 !== undefined && l3 !== family)) {
    throw new ConntrackLineError('bad-value', 'addresses of different families', 0);
  }
  const proto = PROTOS.get(protoNum) ?? 'other';
  if (PORT_PROTOS.has(proto) && (o.sport === undefined || o.dport === undefined)) missing('original sport/dport');
  if ((proto === 'icmp' || proto === 'icmpv6') && (o.icmpType === undefined || o.icmpCode === undefined)) missing('original ICMP type/code');

  const event: Mutable<ConntrackEvent> = {
    type,
    family,
    protoNum,
    proto,
    id: id!,
    orig: freezeTuple(o),
    reply: freezeTuple(r),
    assured,
    unreplied,
    userspace,
  };
  if (timestampMs !== undefined) event.timestampMs = timestampMs;
  if (state !== undefined) event.state = state;
  if (mark !== undefined) event.mark = mark;
  if (deltaTimeS !== undefined) event.deltaTimeS = deltaTimeS;
  return event;
}

/** Real lines are under 1 KiB (the tool prints into a 1 KiB buffer; labels can add a little). */
export const MAX_LINE = 8192;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
interface MutableTuple {
  src?: { address: string; family: Family };
  dst?: { address: string; family: Family };
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
  icmpId?: number;
  packets?: number;
  bytes?: number;
}
type NumberField = 'sport' | 'dport' | 'icmpType' | 'icmpCode' | 'packets' | 'bytes';

const EVENT_TYPES = new Map<string, ConntrackEventType>([
  ['NEW', 'new'],
  ['UPDATE', 'update'],
  ['DESTROY', 'destroy'],
]);
const TUPLE_KEYS = new Map<string, NumberField | 'dst'>([
  ['dst', 'dst'],
  ['sport', 'sport'],
  ['dport', 'dport'],
  ['type', 'icmpType'],
  ['code', 'icmpCode'],
  ['packets', 'packets'],
  ['bytes', 'bytes'],
]);
const TAIL_KEYS = new Set(['mark', 'secmark', 'secctx', 'zone', 'delta-time', 'helper', 'use', 'labels']);
const PROTOS = new Map<number, ConntrackProto>([
  [6, 'tcp'],
  [17, 'udp'],
  [136, 'udplite'],
  [132, 'sctp'],
  [33, 'dccp'],
  [1, 'icmp'],
  [58, 'icmpv6'],
]);
const PORT_PROTOS = new Set<string>(['tcp', 'udp', 'udplite', 'sctp', 'dccp']);

const TIMESTAMP = /^([0-9]{1,12})\.([0-9]{1,9})$/;
const DIGITS = /^[0-9]{1,20}$/;
const L4_NAME = /^[a-z][a-z0-9-]{0,15}$/;
const STATE = /^[A-Z][A-Z0-9_]{0,31}$/;
const KEY = /^[a-z][a-z0-9-]{0,31}$/;

interface Token {
  text: string;
  offset: number;
  bracket: boolean;
}

function tokenize(line: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0d) {
      i++;
      continue;
    }
    if (c === 0x5b /* [ */) {
      const close = line.indexOf(']', i + 1);
      if (close < 0) throw new ConntrackLineError('bad-token', 'unclosed "["', i);
      out.push({ text: line.slice(i + 1, close), offset: i, bracket: true });
      i = close + 1;
      continue;
    }
    let j = i;
    while (j < n) {
      const d = line.charCodeAt(j);
      if (d === 0x20 || d === 0x09 || d === 0x0d) break;
      j++;
    }
    out.push({ text: line.slice(i, j), offset: i, bracket: false });
    i = j;
  }
  return out;
}

function word(t: Token | undefined): string | undefined {
  return t && !t.bracket ? t.text : undefined;
}

/** Decimal without sign or leading `+`, at most `max`. Leading zeros are tolerated (printf never makes them). */
function smallInt(s: string | undefined, max: number): number | undefined {
  if (s === undefined || !/^[0-9]{1,10}$/.test(s)) return undefined;
  const v = Number(s);
  return v <= max ? v : undefined;
}

/** A uint64 counter; exact up to 2^53, which no real counter reaches. */
function counter(s: string): number | undefined {
  return DIGITS.test(s) ? Number(s) : undefined;
}

/**
 * The canonical spelling, and the family as printed: an IPv4-mapped address in an IPv6 entry is
 * written as IPv4 (like every address Sluice records) but still belongs to the IPv6 entry.
 */
function address(s: string): { address: string; family: Family } | undefined {
  const kind = s.includes('%') ? 0 : net.isIP(s); // inet_ntop never prints a zone
  const c = kind === 0 ? undefined : canonicalIp(s);
  return c && { address: c.address, family: kind === 4 ? 4 : 6 };
}

function freezeTuple(t: MutableTuple): ConntrackEvent['orig'] {
  const out: Mutable<ConntrackEvent['orig']> = { src: t.src!.address, dst: t.dst!.address };
  if (t.sport !== undefined) out.sport = t.sport;
  if (t.dport !== undefined) out.dport = t.dport;
  if (t.icmpType !== undefined) out.icmpType = t.icmpType;
  if (t.icmpCode !== undefined) out.icmpCode = t.icmpCode;
  if (t.icmpId !== undefined) out.icmpId = t.icmpId;
  if (t.packets !== undefined) out.packets = t.packets;
  if (t.bytes !== undefined) out.bytes = t.bytes;
  return out;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

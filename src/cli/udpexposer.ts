import { canonicalIp, formatHostPort, parseHostPort, type Endpoint, type HostPort } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { isSluiceError, SluiceError } from '../core/errors.js';
import { DEFAULT_MAX_CLIENTS, DEFAULT_PING_INTERVAL_MS, MAX_TAG } from '../protocol/udpexposer/constants.js';
import { UdpexposerKey } from '../protocol/udpexposer/key.js';
import { NativeDatapath, type NativeDatapathOptions } from '../datapath/native/native-datapath.js';
import { selectUdpDatapath, type DatapathChoice } from '../datapath/native/select.js';
import type { UdpDatapath } from '../datapath/udp-datapath.js';
import { LISTENER_RCVBUF_BYTES } from '../datapath/socket-buffers.js';
import { UdpexposerClient } from '../udpexposer/client.js';
import { defaultAllowLoopback, defaultAllowPrivate, peerPolicy } from '../udpexposer/peer-policy.js';
import { parseDurationMs } from '../core/duration.js';
import { DEFAULT_REPLY_BUDGET, type ReplyBudget } from '../core/reply-budget.js';
import { UdpexposerServer } from '../udpexposer/server.js';
import type { PeerAddress, UdpexposerEvent } from '../udpexposer/types.js';
import { startNodeSlice, type SliceSyscalls } from '../ops/scheduler-slice.js';
import { EXIT } from './exit-codes.js';

/**
 * `sluice udpexposer ...`: udpexposer's own command line (vi/udpexposer 0.3.0, argh flags),
 * running Sluice's implementation of the server or client role until `io.signal` aborts.
 * The flags, and what Sluice does differently, are in docs/udpexposer.md.
 */

export interface UdpexposerIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** Aborting it stops the mode; the returned promise resolves once every socket is closed. */
  readonly signal: AbortSignal;
  readonly clock: Clock;
  /** Called once the sockets are bound: the chosen port when listen_addr has port 0. */
  readonly onReady?: (ready: UdpexposerReady) => void;
  /** Knobs of the native datapath (tests, benchmarks); defaults suit production. */
  readonly udpNative?: NativeDatapathOptions;
  /** The scheduler slice's system calls (ops/scheduler-slice.ts); the addon's by default. */
  readonly schedulerSlice?: SliceSyscalls | string;
}

export type UdpexposerReady =
  | { readonly role: 'server'; readonly local: Endpoint; readonly server: UdpexposerServer }
  | { readonly role: 'client'; readonly local: Endpoint; readonly client: UdpexposerClient };

export interface UdpexposerArgs {
  readonly listen: HostPort;
  readonly mode: 'server' | 'client';
  readonly localConnect: HostPort | undefined;
  readonly serverAddr: HostPort | undefined;
  readonly maxClients: number;
  readonly pingIntervalMs: number;
  readonly password: string | undefined;
  /** Sluice extension: also serve private and link-local peers (server role). */
  readonly allowPrivatePeers: boolean;
  /** Sluice extension: also serve loopback peers (server role). */
  readonly allowLoopbackPeers: boolean;
  /** Sluice extension: the connectees' reply budget (server role); 'off' lifts it. */
  readonly replyBudget: ReplyBudget | 'off';
  /** Sluice extension: which UDP datapath moves the datagrams (docs/datapath.md), both roles. */
  readonly datapath: DatapathChoice;
  /** Sluice extension: the native datapath's receive delay in microseconds (0: none), or 'auto': the adaptive one. */
  readonly batchDelayUs: number | 'auto';
  /** Sluice extension: every thread's scheduler slice in µs (0: the system's; undefined: the default); as `scheduler.sliceUs` of `sluice run`. */
  readonly schedulerSliceUs: number | undefined;
  /** Options given that the chosen role ignores (udpexposer ignores them silently). */
  readonly ignored: readonly string[];
}

export const UDPEXPOSER_USAGE = `Usage: sluice udpexposer <listen_addr> [-c <local_connect_addr>] [-a <server_addr>] [-s] [-n <max_clients>] [-i <ping_interval_ms>] [-P <password>]

Expose a UDP port through a helper host; wire-compatible with udpexposer 0.3.0.

Positional Arguments:
  listen_addr       UDP socket address to bind to

Options:
  -c, --local-connect-addr   client mode: expose specified UDP socket
  -a, --server-addr          client mode: use specified server
  -s, --server-mode          server mode
  -n, --max-clients          maximum number of clients (default 4)
  -i, --ping-interval-ms     for client mode, keepalive interval (default 25000)
  -P, --password             pre-shared key / password; turns on signed keepalives
  --allow-private-peers      (Sluice) server mode: also serve private and link-local sources
  --allow-loopback-peers     (Sluice) server mode: also serve loopback sources
  --reply-budget             (Sluice) server mode: RATIO[/WINDOW] or off; relayed bytes to a
                             connectee per byte from it (default 64/10s)
  --datapath                 (Sluice) auto, native or js: how datagrams move (default auto:
                             the batched native datapath where it loads)
  --batch-delay-us           (Sluice) native datapath: auto, or while traffic is dense, wait
                             up to this many microseconds for a batch to fill (0-10000; 0:
                             never wait, lowest latency); default auto: only while a process
                             receives 8000 datagrams/s or more, at most 500 µs per hop
  --scheduler-slice-us       (Sluice) every thread's scheduler slice in µs (0: the system's,
                             or 100-100000; Linux 6.12+, native addon); default as sluice run's
                             scheduler.sliceUs
  -h, --help                 display usage information

See docs/udpexposer.md.
`;

const OPTIONS: Record<string, 'c' | 'a' | 's' | 'n' | 'i' | 'P' | 'S' | 'h' | 'allow-private' | 'allow-loopback' | 'reply-budget' | 'datapath' | 'batch-delay' | 'slice'> = {
  '-c': 'c', '--local-connect-addr': 'c',
  '-a': 'a', '--server-addr': 'a',
  '-s': 's', '--server-mode': 's',
  '-n': 'n', '--max-clients': 'n',
  '-i': 'i', '--ping-interval-ms': 'i',
  '-P': 'P', '--password': 'P',
  '-S': 'S', '--dump-stats': 'S',
  '-h': 'h', '--help': 'h',
  '--allow-private-peers': 'allow-private',
  '--allow-loopback-peers': 'allow-loopback',
  '--reply-budget': 'reply-budget',
  '--datapath': 'datapath',
  '--batch-delay-us': 'batch-delay',
  '--scheduler-slice-us': 'slice',
};
/** `--batch-delay-us` (docs/udpexposer.md, "Batching at a paced rate"): adaptive unless told otherwise. */
export const DEFAULT_BATCH_DELAY_US = 'auto';
/**
 * What `--batch-delay-us auto` sets (native/src/hold.cc, docs/datapath.md "An adaptive receive
 * delay"): engaged while a process harvests at least `minRate` datagrams/s (a round trip through
 * the pair is 2 in each process), each sleep about the time `batch` datagrams take at that rate,
 * never more than `maxUs`.
 */
export const AUTO_BATCH_DELAY = { maxUs: 500, minRate: 8000, batch: 16 } as const;
const MAX_BATCH_DELAY_US = 10_000;
const DATAPATHS: readonly string[] = ['auto', 'native', 'js'] satisfies DatapathChoice[];
const SWITCHES = new Set(['s', 'S', 'h', 'allow-private', 'allow-loopback']);
const SERVER_ONLY: readonly [string, string][] = [['allow-private', '--allow-private-peers'], ['allow-loopback', '--allow-loopback-peers'], ['reply-budget', '--reply-budget']];

/** Parses udpexposer's flags. Throws SluiceError('SLUICE_ERR_USAGE'); `'help'` for -h/--help. */
export function parseUdpexposerArgs(argv: readonly string[]): UdpexposerArgs | 'help' {
  const seen = new Map<string, string | true>();
  const positional: string[] = [];
  let onlyPositional = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (onlyPositional || !arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyPositional = true;
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const opt = OPTIONS[name];
    if (opt === undefined) throw usage(`Unrecognized argument: ${name}`);
    if (opt === 'h') return 'help';
    if (seen.has(opt)) throw usage(`Duplicate value for ${name}`);
    if (SWITCHES.has(opt)) {
      if (eq >= 0) throw usage(`${name} takes no value`);
      seen.set(opt, true);
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw usage(`No value provided for option '${name}'.`);
    seen.set(opt, value);
  }
  if (seen.has('S')) throw usage('-S/--dump-stats is not supported: Sluice servers do not answer stats requests (see docs/udpexposer.md)');
  if (positional.length === 0) throw usage('Required positional arguments not provided:\n    listen_addr');
  if (positional.length > 1) throw usage(`Unrecognized argument: ${positional[1]}`);
  const str = (k: string) => seen.get(k) as string | undefined;
  const listen = socketAddr(positional[0]!, 'listen_addr', true);
  const localConnect = str('c') === undefined ? undefined : socketAddr(str('c')!, '--local-connect-addr', false);
  const serverAddr = str('a') === undefined ? undefined : socketAddr(str('a')!, '--server-addr', false);
  const maxClients = str('n') === undefined ? DEFAULT_MAX_CLIENTS : integer(str('n')!, '--max-clients', 1, MAX_TAG);
  const pingIntervalMs = str('i') === undefined ? DEFAULT_PING_INTERVAL_MS : integer(str('i')!, '--ping-interval-ms', 1, 2_147_483_647);
  const server = seen.has('s');
  if (!server && (localConnect === undefined || serverAddr === undefined)) {
    throw usage('Invalid options: either -s or both -c and -a should be specified');
  }
  const replyBudget = str('reply-budget') === undefined ? DEFAULT_REPLY_BUDGET : parseReplyBudget(str('reply-budget')!);
  const datapath = str('datapath') ?? 'auto';
  if (!DATAPATHS.includes(datapath)) throw usage(`--datapath: "${datapath}" is not auto, native or js`);
  const delay = str('batch-delay');
  const batchDelayUs = delay === undefined || delay === 'auto' ? DEFAULT_BATCH_DELAY_US : integer(delay, '--batch-delay-us', 0, MAX_BATCH_DELAY_US);
  const slice = str('slice') === undefined ? undefined : integer(str('slice')!, '--scheduler-slice-us', 0, 100_000);
  if (slice !== undefined && slice > 0 && slice < 100) throw usage(`--scheduler-slice-us: ${slice} is out of range (0, or 100-100000)`);
  const ignored = server
    ? [...(localConnect ? ['-c'] : []), ...(serverAddr ? ['-a'] : []), ...(str('i') !== undefined ? ['-i'] : [])]
    : SERVER_ONLY.filter(([k]) => seen.has(k)).map(([, flag]) => flag);
  return {
    listen,
    mode: server ? 'server' : 'client',
    localConnect,
    serverAddr,
    maxClients,
    pingIntervalMs,
    password: str('P'),
    allowPrivatePeers: seen.has('allow-private'),
    allowLoopbackPeers: seen.has('allow-loopback'),
    replyBudget,
    datapath: datapath as DatapathChoice,
    batchDelayUs,
    schedulerSliceUs: slice,
    ignored,
  };
}

/**
 * Runs udpexposer mode with `argv` (the words after `sluice udpexposer`) until `io.signal`
 * aborts. Returns the process exit code: 0 after a clean stop, 2 for usage errors, 4 when a
 * socket cannot be bound, 1 otherwise. Prints udpexposer's own event lines on stdout.
 */
export async function runUdpexposerCommand(argv: string[], io: UdpexposerIo): Promise<number> {
  let args: UdpexposerArgs | 'help';
  try {
    args = parseUdpexposerArgs(argv);
  } catch (err) {
    io.stderr.write(`sluice udpexposer: ${(err as Error).message}\nRun sluice udpexposer --help for usage.\n`);
    return EXIT.usage;
  }
  if (args === 'help') {
    io.stdout.write(UDPEXPOSER_USAGE);
    return EXIT.ok;
  }
  for (const flag of args.ignored) io.stderr.write(`sluice udpexposer: warning: ${flag} has no effect in ${args.mode} mode\n`);
  if (io.signal.aborted) return EXIT.ok;
  let datapath: UdpDatapath;
  try {
    // Workers get a listener's receive buffer: a few sockets per process, each holding its
    // target's answers through a loop turn that sleeps (--batch-delay-us) or is preempted.
    const delay = args.batchDelayUs === 'auto'
      ? { receiveDelayUs: AUTO_BATCH_DELAY.maxUs, receiveDelayMinRate: AUTO_BATCH_DELAY.minRate, receiveDelayBatch: AUTO_BATCH_DELAY.batch }
      : { receiveDelayUs: args.batchDelayUs };
    const selected = selectUdpDatapath(args.datapath, { ...delay, channelRcvbufBytes: LISTENER_RCVBUF_BYTES, ...io.udpNative });
    datapath = selected.datapath;
    // Said the way `sluice run` logs it: once, with the reason.
    if (selected.fallback !== undefined) io.stderr.write(`sluice udpexposer: warning: native UDP datapath unavailable; using the js datapath: ${selected.fallback}\n`);
    if (datapath.kind === 'js' && typeof args.batchDelayUs === 'number' && args.batchDelayUs > 0) io.stderr.write('sluice udpexposer: warning: --batch-delay-us has no effect on the js datapath\n');
  } catch (err) {
    io.stderr.write(`sluice udpexposer: --datapath ${args.datapath}: ${(err as Error).message}\n`);
    return EXIT.startFailed;
  }
  // Every thread's scheduler slice (docs/configuration.md, "scheduler"), said the way the rest is.
  const say = (fields: Record<string, unknown>, message: string) => io.stderr.write(`sluice udpexposer: warning: ${message}: ${String(fields.reason)}\n`);
  const slice = startNodeSlice({ sliceUs: args.schedulerSliceUs, datapath: datapath.kind === 'js' ? 'js' : 'native' }, { clock: io.clock, warn: say, info: () => {}, setting: '--scheduler-slice-us', ...(io.schedulerSlice !== undefined ? { syscalls: io.schedulerSlice } : {}) });
  try {
    return await run(args, io, datapath);
  } finally {
    slice.close();
    if (datapath instanceof NativeDatapath) datapath.destroy();
  }
}

async function run(args: UdpexposerArgs, io: UdpexposerIo, datapath: UdpDatapath): Promise<number> {
  const key = args.password === undefined ? undefined : await UdpexposerKey.fromPassword(args.password);
  const deps = { clock: io.clock, datapath, onEvent: (e: UdpexposerEvent) => printEvent(io, e) };
  const ac = new AbortController();
  const signal = AbortSignal.any([io.signal, ac.signal]);
  let closed: Promise<void>;
  let summary: () => unknown;
  let local: Endpoint;
  try {
    if (args.mode === 'server') {
      if (key === undefined) {
        io.stderr.write(
          'sluice udpexposer: warning: without -P this server is an open amplifier by design: any host can take over the client role ' +
            'with an empty datagram (spoofed or not) and have every connectee\'s traffic sent to that address\n',
        );
      }
      const b = args.replyBudget;
      io.stderr.write(
        b === 'off'
          ? 'sluice udpexposer: warning: --reply-budget off: what the client relays to a connectee is not bounded, so a spoofed connectee address can be flooded\n'
          : `sluice udpexposer: replies to each connectee are held to ${b.ratio}x what it sent over ${b.windowMs / 1000}s (--reply-budget)\n`,
      );
      const server = await UdpexposerServer.listen(
        {
          listen: args.listen,
          maxClients: args.maxClients,
          key,
          replyBudget: args.replyBudget,
          peerPolicy: peerPolicy({
            allowPrivate: args.allowPrivatePeers || defaultAllowPrivate(args.listen.host),
            allowLoopback: args.allowLoopbackPeers || defaultAllowLoopback(args.listen.host),
          }),
        },
        deps,
        signal,
      );
      closed = server.closed;
      local = server.local;
      summary = () => server.counters;
      io.onReady?.({ role: 'server', local: server.local, server });
    } else {
      const client = await UdpexposerClient.start(
        {
          listen: args.listen,
          server: args.serverAddr!,
          target: args.localConnect!,
          maxClients: args.maxClients,
          pingIntervalMs: args.pingIntervalMs,
          key,
        },
        deps,
        signal,
      );
      closed = client.closed;
      local = client.local;
      summary = () => client.counters;
      io.onReady?.({ role: 'client', local: client.local, client });
    }
  } catch (err) {
    io.stderr.write(`sluice udpexposer: ${(err as Error).message}\n`);
    if (isSluiceError(err, 'SLUICE_ERR_BIND')) return EXIT.startFailed;
    return isSluiceError(err, 'SLUICE_ERR_USAGE') ? EXIT.usage : EXIT.runtime;
  }
  const delay = !(datapath instanceof NativeDatapath) || args.batchDelayUs === 0 ? ''
    : args.batchDelayUs === 'auto' ? `, batch delay auto (up to ${AUTO_BATCH_DELAY.maxUs} µs from ${AUTO_BATCH_DELAY.minRate} datagrams/s)` : `, batch delay ${args.batchDelayUs} µs`;
  io.stderr.write(`sluice udpexposer: ${args.mode} on ${formatHostPort(local.address, local.port)}, UDP datapath ${datapath.kind}${delay}\n`);
  await closed;
  ac.abort();
  const held = datapath instanceof NativeDatapath ? datapath.receiveDelayState : undefined;
  const batching = held === undefined ? {}
    : { batchDelayUs: args.batchDelayUs, batchDelays: held.sleeps, batchDelayEngaged: held.engages, batchDelayDisengaged: held.disengages };
  io.stderr.write(`sluice udpexposer: stopped ${JSON.stringify({ datapath: datapath.kind, ...batching, ...(summary() as object) })}\n`);
  return EXIT.ok;
}

function printEvent(io: UdpexposerIo, e: UdpexposerEvent): void {
  const at = (p: PeerAddress) => formatHostPort(p.address, p.port);
  switch (e.type) {
    case 'client-address':
      io.stdout.write(`New client address: ${at(e.address)}\n`);
      return;
    case 'connectee-added':
      io.stdout.write(`Connectee seqn ${e.tag} from ${at(e.peer)}${e.evicted ? ` (evicted seqn ${e.evicted.tag}, idle)` : ''}\n`);
      return;
    case 'authenticated':
      io.stdout.write('Authenticated\n');
      return;
    case 'worker-opened':
      io.stdout.write(`New incoming channel ${e.tag}\n`);
      return;
    case 'worker-closed':
      io.stdout.write(`Finished serving channel ${e.tag}\n`);
      return;
    case 'bad-signature':
      io.stderr.write(`sluice udpexposer: warning: ${at(e.peer)} sent a keepalive signed with another password (a client with a wrong -P?); dropped, not forwarded\n`);
      return;
    case 'registration-unanswered':
      io.stderr.write(
        `sluice udpexposer: warning: ${e.unanswered} registrations sent to ${at(e.server)} got no signed answer: check that -P matches the server's password, that the server runs with -P, and that -a is its address; nothing is relayed until it answers\n`,
      );
      return;
  }
}

function usage(message: string): SluiceError {
  return new SluiceError('SLUICE_ERR_USAGE', message);
}

/** Rust's SocketAddr syntax: `a.b.c.d:port` or `[v6]:port`; names are not resolved. */
function socketAddr(text: string, what: string, allowZeroPort: boolean): HostPort {
  const hp = parseHostPort(text, allowZeroPort);
  if (typeof hp === 'string' || !canonicalIp(hp.host)) {
    throw usage(`${what}: invalid socket address syntax "${text}" (expected IP:port or [IPv6]:port)`);
  }
  return hp;
}

/** `off`, `RATIO` or `RATIO/WINDOW` (a duration such as 10s). */
function parseReplyBudget(text: string): ReplyBudget | 'off' {
  if (text === 'off') return 'off';
  const [r, w] = text.split('/', 2) as [string, string | undefined];
  const ratio = Number(r);
  const windowMs = w === undefined ? DEFAULT_REPLY_BUDGET.windowMs : parseDurationMs(w);
  if (!/^\d+(\.\d+)?$/.test(r) || !(ratio >= 1 && ratio <= 1_000_000) || windowMs === undefined || windowMs <= 0) {
    throw usage(`--reply-budget: "${text}" is not off, RATIO or RATIO/WINDOW (ratio 1-1000000, window a duration such as 10s)`);
  }
  return { ratio, windowMs };
}

function integer(text: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw usage(`${what}: "${text}" is not a non-negative integer`);
  const n = Number(text);
  if (n < min || n > max) throw usage(`${what}: ${text} is out of range (${min}-${max})`);
  return n;
}

import { readFileSync } from 'node:fs';
import { SluiceError } from '../core/errors.js';

/*
 * The `congestion` setting (docs/datapath.md "Congestion control of the engine's sockets"): which
 * TCP congestion control Sluice's own sockets on the native stream datapath use. `auto` (the
 * default) keeps the kernel's except where it paces by itself (BBR) and the peer is on this host:
 * pacing exists to spare a network's queues and loopback has none, while its timers, firing as
 * the relay runs, cost a splicing relay more CPU than the bytes' own handling. `system` never sets
 * one. A name (`cubic`, `bbr`, ...) is set on every listener and dial of the native stream datapath.
 */

/** The kernel's congestion controls, as /proc/sys/net/ipv4 shows them to this network namespace. */
export interface KernelCongestion {
  /** net.ipv4.tcp_congestion_control */
  readonly default: string;
  /** net.ipv4.tcp_available_congestion_control */
  readonly available: readonly string[];
  /** net.ipv4.tcp_allowed_congestion_control: what a process without CAP_NET_ADMIN may set */
  readonly allowed: readonly string[];
  /** The process has CAP_NET_ADMIN (may set any available one). */
  readonly privileged: boolean;
}

/**
 * What the stream engine applies before listen() or connect(): `all` to every socket, else `local`
 * to those whose peer is on this host (a dial to a loopback address, a listener bound to one).
 * '' leaves the kernel's default.
 */
export interface CongestionChoice {
  readonly local: string;
  readonly all: string;
}

export const NO_CONGESTION_CHOICE: CongestionChoice = { local: '', all: '' };

/** Congestion controls that pace their own sockets without an fq qdisc (Linux's BBR and its versions). */
const PACING = /^bbr/;
/** For `auto`'s local sockets, in order: the kernel's usual default, then the one every kernel has. */
const LOCAL = ['cubic', 'reno'];

/** The choice for `setting` (auto, system, or a name); throws SLUICE_ERR_CONFIG_INVALID for a name this kernel or this process cannot use. */
export function congestionChoice(setting: string, kernel: KernelCongestion | undefined): CongestionChoice {
  if (setting === 'system') return NO_CONGESTION_CHOICE;
  if (setting === 'auto') {
    if (kernel === undefined || !PACING.test(kernel.default)) return NO_CONGESTION_CHOICE;
    const local = LOCAL.find((name) => usable(kernel, name));
    return local === undefined ? NO_CONGESTION_CHOICE : { local, all: '' };
  }
  if (kernel === undefined) throw invalid(`congestion: "${setting}": this system does not show its TCP congestion controls (/proc/sys/net/ipv4); use auto or system`);
  if (!kernel.available.includes(setting)) {
    throw invalid(`congestion: "${setting}" is not offered by this kernel (net.ipv4.tcp_available_congestion_control: ${kernel.available.join(' ')})`);
  }
  if (!usable(kernel, setting)) {
    throw invalid(`congestion: "${setting}" is not in net.ipv4.tcp_allowed_congestion_control (${kernel.allowed.join(' ')}) and Sluice runs without CAP_NET_ADMIN`);
  }
  return { local: '', all: setting };
}

/** The choice as /api/health shows it: `loopback` or `all`; undefined when nothing is set. */
export function congestionView(choice: CongestionChoice): { loopback: string } | { all: string } | undefined {
  if (choice.all !== '') return { all: choice.all };
  return choice.local !== '' ? { loopback: choice.local } : undefined;
}

function usable(kernel: KernelCongestion, name: string): boolean {
  return kernel.available.includes(name) && (kernel.privileged || kernel.allowed.includes(name));
}

function invalid(message: string): SluiceError {
  return new SluiceError('SLUICE_ERR_CONFIG_INVALID', message);
}

/** CAP_NET_ADMIN's bit in /proc/self/status CapEff. */
const CAP_NET_ADMIN = 12n;

/** Reads this network namespace's congestion controls; undefined where /proc does not show them (not Linux). */
export function readKernelCongestion(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): KernelCongestion | undefined {
  try {
    const sys = (name: string) => read(`/proc/sys/net/ipv4/${name}`).trim();
    const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(read('/proc/self/status'))?.[1];
    return {
      default: sys('tcp_congestion_control'),
      available: sys('tcp_available_congestion_control').split(/\s+/),
      allowed: sys('tcp_allowed_congestion_control').split(/\s+/),
      privileged: capEff !== undefined && ((BigInt(`0x${capEff}`) >> CAP_NET_ADMIN) & 1n) === 1n,
    };
  } catch {
    return undefined;
  }
}

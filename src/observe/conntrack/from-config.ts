import type { Logger } from 'pino';
import type { ConntrackConfig } from '../../config/observe-schema.js';
import { ConntrackSource, type ConntrackSourceDeps } from './conntrack-source.js';
import type { ConntrackStatus } from './source-contract.js';

/**
 * The conntrack source a `conntrack:` config asks for, reporting its lifecycle to the process log
 * (few lines: per start, exit and failure, never per event). The ops layer (ops/record-sinks.ts) owns its lifetime.
 */
export function conntrackSourceFrom(c: ConntrackConfig, deps: ConntrackSourceDeps & { readonly log: Logger }): ConntrackSource {
  const { log, ...rest } = deps;
  // The compiled config is the source's options as they are (`enabled` was the caller's to check).
  return new ConntrackSource(c, { onStatus: (s) => logConntrack(log, s), ...rest });
}

function logConntrack(log: Logger, s: ConntrackStatus): void {
  switch (s.type) {
    case 'spawned':
      log.info({ pid: s.pid, command: s.command }, 'conntrack source started');
      return;
    case 'exited':
      log.warn({ pid: s.pid, code: s.code, signal: s.signal, runMs: s.runMs, stderr: s.stderr, retryInMs: s.retryInMs }, 'conntrack tool exited; restarting');
      return;
    case 'spawn-failed':
      log.error({ err: s.error.message, retryInMs: s.retryInMs }, 'conntrack tool cannot start; retrying');
      return;
    case 'line-rejected':
      log.warn({ reason: s.error.reason, line: s.line.slice(0, 300) }, 'conntrack line not understood (further ones are only counted)');
      return;
    case 'events-lost':
      log.warn({ detail: s.detail }, 'the kernel dropped conntrack events (netlink buffer full)');
      return;
    case 'sysctl-set':
    case 'sysctl-restored':
      log.info({ name: s.name, to: s.to }, s.type === 'sysctl-set' ? 'sysctl set for conntrack' : 'sysctl restored');
      return;
    case 'sysctl-failed':
      log.warn({ name: s.name, err: (s.error as Error)?.message ?? String(s.error) }, 'cannot set sysctl; records will lack counters');
      return;
  }
}

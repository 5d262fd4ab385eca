import { sluiceVersion } from './core/version.js';
import { systemClock } from './core/clock.js';
import { isSluiceError } from './core/errors.js';
import { formatIssue, type SluiceConfig } from './config/types.js';
import { loadConfigFile } from './config/load.js';
import { preflightFile } from './config/preflight.js';
import { openCountryDatabase } from './admission/acl/country.js';
import { parseArgs, type ParsedArgs } from './cli/args.js';
import { EXIT } from './cli/exit-codes.js';
import { COMMAND_HELP, HELP } from './cli/help.js';
import { startDemoUpstreams } from './cli/demo.js';
import { formatHostPort } from './core/address.js';
import { startNode } from './root/start-node.js';
import type { RunningNode } from './root/running-node.js';
import { runUdpexposerCommand, UDPEXPOSER_USAGE } from './cli/udpexposer.js';
import { runStatusCommand, STATUS_HELP } from './cli/status.js';
import { BANS_HELP, runBansCommand } from './cli/bans.js';
import { preferAead } from './protocol/tunnel/aead.js';

/** The process shell: the only module that touches `process`. */
const FLAGS = { config: 'string', help: 'boolean', h: 'boolean', version: 'boolean', v: 'boolean' } as const;

async function main(argv: string[]): Promise<number> {
  // SLUICE_AEAD=node: the tunnel seals with node:crypto instead of libsodium (docs/tunnel-protocol.md).
  if (process.env.SLUICE_AEAD === 'node') preferAead('node');
  // udpexposer's own flags (-s, -c, a positional address) are passed through untouched.
  if (argv[0] === 'udpexposer') return udpexposer(argv.slice(1));
  // status has its own flags (--admin, --token, --json).
  if (argv[0] === 'status') return runStatusCommand(argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env });
  if (argv[0] === 'bans') return runBansCommand(argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env });
  let args;
  try {
    args = parseArgs(argv, FLAGS);
  } catch (err) {
    process.stderr.write(`sluice: ${(err as Error).message}\n${'Run sluice --help for usage.'}\n`);
    return EXIT.usage;
  }
  if (args.flags.has('version') || args.flags.has('v')) {
    process.stdout.write(`sluice ${sluiceVersion()}\n`);
    return EXIT.ok;
  }
  if (args.flags.has('help') || args.flags.has('h') || args.command === 'help') {
    const topic = args.command === 'help' ? args.positional[0] : args.command;
    const own: Record<string, string> = { ...COMMAND_HELP, status: STATUS_HELP, bans: BANS_HELP, udpexposer: UDPEXPOSER_USAGE };
    process.stdout.write((topic !== undefined && own[topic]) || HELP);
    return EXIT.ok;
  }
  switch (args.command) {
    case 'check':
    case 'run': {
      const path = configPath(args);
      if (typeof path === 'number') return path;
      return args.command === 'check' ? check(path) : run(path);
    }
    case 'demo':
      if (args.positional.length > 0 || args.flags.has('config')) return usageError('demo takes no config file and no arguments', 'demo');
      return demo();
    case undefined:
      process.stderr.write(HELP);
      return EXIT.usage;
    default:
      process.stderr.write(`sluice: unknown command "${args.command}"\nRun sluice --help for usage.\n`);
      return EXIT.usage;
  }
}

/** The config file of `check`/`run`: `FILE` or `--config FILE` (the same one if both). */
function configPath(args: ParsedArgs): string | number {
  const flag = args.flags.get('config');
  const [positional, extra] = args.positional;
  if (extra !== undefined) return usageError(`${args.command} takes one config file; also got "${extra}"`, args.command!);
  if (flag === true) return usageError('--config needs a file', args.command!);
  if (flag !== undefined && positional !== undefined && flag !== positional) {
    return usageError(`two config files given: --config ${flag} and ${positional}`, args.command!);
  }
  const path = flag ?? positional;
  if (path === undefined) return usageError(`which config file? sluice ${args.command} FILE`, args.command!);
  return path;
}

function usageError(message: string, command: string): number {
  process.stderr.write(`sluice ${command}: ${message}\nRun sluice ${command} --help for usage.\n`);
  return EXIT.usage;
}

async function udpexposer(argv: string[]): Promise<number> {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  return runUdpexposerCommand(argv, { stdout: process.stdout, stderr: process.stderr, signal: ac.signal, clock: systemClock });
}

async function load(path: string): Promise<SluiceConfig | number> {
  const parsed = await loadConfigFile(path);
  const issues = parsed.ok ? await preflightFile(parsed.config, path, { openCountryDatabase }) : parsed.issues;
  if (parsed.ok && issues.length === 0) return parsed.config;
  process.stderr.write(`sluice: ${path}: ${issues.length} problem(s)\n`);
  for (const issue of issues) process.stderr.write(`  ${formatIssue(issue)}\n`);
  return EXIT.configInvalid;
}

async function check(path: string): Promise<number> {
  const config = await load(path);
  if (typeof config === 'number') return config;
  const parts = [`${config.routes.length} route(s)`];
  if (config.gateway) parts.push(`gateway for ${config.gateway.agents.size} agent(s)`);
  const a = config.agent;
  if (a) parts.push(`agent ${a.name}: ${a.expose.length} exposed service(s), ${a.connect.length} connect listener(s)`);
  process.stdout.write(`${path}: ok, ${parts.join(', ')}\n`);
  return EXIT.ok;
}

async function run(path: string): Promise<number> {
  const reloads = holdReloads();
  const config = await load(path);
  if (typeof config === 'number') return config;
  return serve(config, path, reloads);
}

async function demo(): Promise<number> {
  const upstreams = await startDemoUpstreams();
  const code = await serve(upstreams.config, undefined, holdReloads(), (node) => {
    const [udp, tcp] = [node.routes.route('demo-udp')!, node.routes.route('demo-tcp')!];
    process.stderr.write(
      [
        '',
        'Sluice demo is running: two routes in front of an embedded echo service.',
        `  UDP ${formatHostPort(udp.local.address, udp.local.port)}  try: echo hello | nc -u -w1 ${udp.local.address} ${udp.local.port}`,
        `  TCP ${formatHostPort(tcp.local.address, tcp.local.port)}  try: echo hello | nc -N ${tcp.local.address} ${tcp.local.port}`,
        ...(node.ops.adminAddress
          ? [`  Dashboard ${node.ops.adminTls ? 'https' : 'http'}://${formatHostPort(node.ops.adminAddress.address, node.ops.adminAddress.port)}/  (npx sluice status --admin ${formatHostPort(node.ops.adminAddress.address, node.ops.adminAddress.port)})`]
          : []),
        'Access log lines appear on stdout. Ctrl-C stops it.',
        '',
      ].join('\n') + '\n',
    );
  });
  upstreams.close();
  return code;
}

/** Benchmark knobs of the native UDP datapath (bench/relay/subject.sh, docs/datapath.md). */
function benchKnobs() {
  return { gso: process.env.SLUICE_UDP_GSO !== '0', gro: process.env.SLUICE_UDP_GRO !== '0', readiness: process.env.SLUICE_UDP_READINESS === 'thread' ? ('thread' as const) : ('loop' as const) };
}

/**
 * Takes SIGHUP from the first moment of `run`: a reload asked for while the config loads or the
 * routes bind (a supervisor's reload) runs once started, instead of SIGHUP's default (exit).
 */
function holdReloads(): { attach(node: RunningNode): void } {
  let running: RunningNode | undefined;
  let pending = false;
  process.on('SIGHUP', () => (running ? void running.reload() : (pending = true)));
  return {
    attach(node) {
      running = node;
      if (pending) void node.reload();
    },
  };
}

async function serve(config: SluiceConfig, path: string | undefined, reloads: { attach(node: RunningNode): void }, started?: (node: RunningNode) => void): Promise<number> {
  let node: RunningNode;
  try {
    node = await startNode(config, { clock: systemClock, logDestination: process.stderr, configPath: path, udpNative: benchKnobs() });
  } catch (err) {
    process.stderr.write(`sluice: ${isSluiceError(err) ? err.message : String(err)}\n`);
    if (isSluiceError(err, 'SLUICE_ERR_BIND') || isSluiceError(err, 'SLUICE_ERR_OUTPUT')) return EXIT.startFailed;
    return isSluiceError(err, 'SLUICE_ERR_CONFIG_READ') ? EXIT.configInvalid : EXIT.runtime;
  }
  started?.(node);
  // The clock's timers are unref'd, and an agent waiting to retry may hold no socket: this handle
  // keeps the process up until a signal stops it, so it never exits 0 for lack of work.
  const keepAlive = setInterval(() => {}, 1 << 30);
  reloads.attach(node);
  // One listener for the whole run, so a second signal is never lost between two registrations.
  let signals = 0;
  let stop!: () => void;
  const stopping = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = () => {
    if (++signals === 1) return stop();
    if (signals === 2) {
      node.log.warn('stopping at once: live sessions end now (a third signal exits without cleanup)');
      return void node.destroy().catch(() => {});
    }
    process.exit(EXIT.runtime);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await stopping;
  node.log.info('stopping: draining live sessions (send the signal again to stop at once)');
  await node.stop();
  clearInterval(keepAlive);
  // Whatever is still pending after the stop (a stuck file-system call) must not hold the exit.
  setTimeout(() => process.exit(EXIT.ok), 5_000).unref();
  return EXIT.ok;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`sluice: unexpected failure: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT.runtime;
  },
);

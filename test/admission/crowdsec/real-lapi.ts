import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import { freePort, waitFor } from '../../helpers/net.js';
import { havePeer, tempDir } from '../../helpers/peers.js';

const run = promisify(execFile);

/**
 * A real CrowdSec Local API (Debian's crowdsec 1.4.6) for tests, after
 * ../shared/engines/ci-crowdsec.sh: offline (no Central API, no hub update), private config,
 * SQLite database and logs in a temp folder, LAPI on 127.0.0.1 with a port found at run time.
 * The agent part runs too, reading an empty log file. cscli talks to this instance only (-c).
 * The daemon runs in its own process group, killed by its PID; `stop`/`start` simulate an outage
 * on the same port and database.
 */
export interface RealLapi {
  readonly url: string;
  readonly port: number;
  /** Runs cscli against this instance; resolves with its stdout. */
  cscli(...args: string[]): Promise<string>;
  /** A new bouncer key (`cscli bouncers add`). */
  addBouncer(name: string): Promise<string>;
  stop(): Promise<void>;
  start(): Promise<void>;
  log(): string;
}

/** Whether crowdsec and cscli are installed: under CI=true a missing one fails, otherwise the test is skipped loudly. */
export function haveCrowdsec(t: TestContext): boolean {
  return havePeer(t, 'crowdsec', 'crowdsec') && havePeer(t, 'cscli', 'crowdsec');
}

export async function startRealLapi(t: TestContext): Promise<RealLapi> {
  const dir = await tempDir(t, 'sluice-crowdsec-');
  const port = await freePort();
  const config = join(dir, 'config.yaml');
  await writeFile(join(dir, 'sluice-auth.log'), '');
  await writeFile(join(dir, 'acquis.yaml'), `filenames:\n  - ${dir}/sluice-auth.log\nlabels:\n  type: syslog\n`);
  await writeFile(
    config,
    `common:
  daemonize: false
  log_media: file
  log_level: info
  log_dir: ${dir}/
  working_dir: .
config_paths:
  config_dir: /etc/crowdsec/
  data_dir: /var/lib/crowdsec/data/
  simulation_path: /etc/crowdsec/simulation.yaml
  hub_dir: /var/lib/crowdsec/hub/
  index_path: /var/lib/crowdsec/hub/.index.json
  notification_dir: /etc/crowdsec/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
crowdsec_service:
  acquisition_path: ${dir}/acquis.yaml
  parser_routines: 1
cscli:
  output: human
  color: "no"
db_config:
  type: sqlite
  db_path: ${dir}/crowdsec.db
  use_wal: true
api:
  client:
    credentials_path: ${dir}/local_api_credentials.yaml
  server:
    listen_uri: 127.0.0.1:${port}
    profiles_path: /etc/crowdsec/profiles.yaml
    trusted_ips: [127.0.0.1, "::1"]
prometheus:
  enabled: false
`,
  );
  const cscli = async (...args: string[]) => {
    try {
      return (await run('cscli', ['-c', config, '--error', ...args], { timeout: 20_000 })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`cscli ${args.join(' ')} failed: ${e.stderr || e.message}`);
    }
  };
  await cscli('machines', 'add', 'sluice-test-agent', '--auto', '-f', join(dir, 'local_api_credentials.yaml'));
  const probeKey = (await cscli('bouncers', 'add', 'sluice-probe', '-o', 'raw')).trim();

  let child: ChildProcess | undefined;
  let output = '';
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-c.pid!, sig);
      } catch {
        /* already gone */
      }
    };
    kill('SIGTERM');
    const hard = setTimeout(() => kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(hard);
  };
  const start = async () => {
    const c = spawn('crowdsec', ['-c', config, '-no-capi'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child = c;
    c.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    let up = false;
    const probe = async () => {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/v1/decisions`, { headers: { 'X-Api-Key': probeKey }, signal: AbortSignal.timeout(500) });
        await r.arrayBuffer();
        up = r.status === 200;
      } catch {
        up = false;
      }
    };
    const end = Date.now() + 20_000;
    while (!up) {
      if (c.exitCode !== null) throw new Error(`crowdsec exited with ${c.exitCode}:\n${output}`);
      if (Date.now() > end) throw new Error(`crowdsec LAPI did not answer on ${port} within 20s:\n${output}`);
      await probe();
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
  };
  t.after(stop);
  await start();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    cscli,
    addBouncer: async (name) => (await cscli('bouncers', 'add', name, '-o', 'raw')).trim(),
    stop,
    start,
    log: () => output,
  };
}

/** Waits until `cond` holds, polling every 20 ms (pull intervals in these tests are 200 ms). */
export const eventually = (cond: () => boolean, what: string, timeoutMs = 5_000) => waitFor(cond, what, timeoutMs);

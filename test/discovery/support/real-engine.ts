import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, copyFileSync, openSync, closeSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/**
 * A real container engine for interop tests, started by hand as ../shared/engines/ci-docker.sh
 * and ci-podman.sh do: private state under a temporary folder, its own unix socket, host
 * networking only (never a bridge), and an image imported offline from a busybox root
 * filesystem plus a tiny static echo server. The test owns the engine's process group, so it can
 * restart the engine and always kills it at the end.
 */
export type EngineKind = 'docker' | 'podman';

/** Tagged latest: Podman's compatible import ignores the tag parameter. */
export const IMAGE = 'localhost/sluice/echo:latest';

/** A UDP or TCP echo on 127.0.0.1:PORT; TCP half-close is forwarded. Built with `cc -static`. */
const ECHO_C = String.raw`
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: echo-server tcp|udp PORT\n"); return 2; }
  int udp = strcmp(argv[1], "udp") == 0, one = 1;
  int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a; memset(&a, 0, sizeof a);
  a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[2])); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
  static char buf[65536];
  if (udp) {
    for (;;) {
      struct sockaddr_in p; socklen_t l = sizeof p;
      ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&p, &l);
      if (n >= 0) sendto(fd, buf, n, 0, (struct sockaddr *)&p, l);
    }
  }
  listen(fd, 64);
  signal(SIGCHLD, SIG_IGN);
  for (;;) {
    int c = accept(fd, 0, 0);
    if (c < 0) continue;
    if (fork() == 0) {
      ssize_t n;
      close(fd);
      while ((n = read(c, buf, sizeof buf)) > 0) if (write(c, buf, n) != n) break;
      shutdown(c, SHUT_WR);
      _exit(0);
    }
    close(c);
  }
}
`;

export interface ApiAnswer {
  readonly status: number;
  readonly body: string;
  json<T = unknown>(): T;
}

export interface RealEngine {
  readonly kind: EngineKind;
  readonly socketPath: string;
  api(method: string, path: string, body?: unknown): Promise<ApiAnswer>;
  /** Creates and starts a container on the host network; returns its id. */
  run(name: string, cmd: string[], labels: Record<string, string>): Promise<string>;
  stop(name: string): Promise<void>;
  /** PID of the container's first process, as the host sees it. */
  pid(name: string): Promise<number>;
  /** Stops the engine process (containers keep running: live restore) and starts it again after `whileDown`. */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  readonly log: () => string;
}

/**
 * Starts the engine, or explains why it cannot: the caller fails under CI=true and skips loudly
 * otherwise (engineOrSkip).
 */
export async function startEngine(t: TestContext, kind: EngineKind): Promise<RealEngine | string> {
  const missing = missingTools(kind);
  if (missing.length > 0) return `${missing.join(', ')} not installed`;
  const dir = mkdtempSync(`/tmp/sluice-${kind}-`);
  const socketPath = join(dir, `${kind}.sock`);
  const logPath = join(dir, 'engine.log');
  const env = kind === 'podman' ? podmanEnv(dir) : process.env;
  let child: ChildProcess | undefined;

  const launch = async (): Promise<string | undefined> => {
    const out = openSync(logPath, 'a');
    const args =
      kind === 'docker'
        ? ['--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'), '-H', `unix://${socketPath}`,
           '--bridge', 'none', '--iptables=false', '--ip-masq=false', '--live-restore', '--storage-driver', storageDriver(dir)]
        : ['system', 'service', '--time=0', `unix://${socketPath}`];
    child = spawn(kind === 'docker' ? 'dockerd' : 'podman', args, { detached: true, stdio: ['ignore', out, out], env });
    closeSync(out);
    const exited = new Promise<string>((resolve) => child!.once('exit', (code, sig) => resolve(`exited (${code ?? sig})`)));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const r = await Promise.race([ping(socketPath), exited]);
      if (r === true) return undefined;
      if (typeof r === 'string') return `${kind} ${r}: ${tail(logPath)}`;
      await new Promise((res) => setTimeout(res, 100));
    }
    return `${kind} did not answer on ${socketPath} within 20s: ${tail(logPath)}`;
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((resolve) => c.once('exit', resolve));
    try {
      process.kill(-c.pid!, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 15_000);
    await gone;
    clearTimeout(timer);
  };

  const engine: RealEngine = {
    kind,
    socketPath,
    api: (method, path, body) => request(socketPath, method, path, body),
    async run(name, cmd, labels) {
      const create = await engine.api('POST', `/containers/create?name=${encodeURIComponent(name)}`, {
        Image: IMAGE,
        Cmd: cmd,
        Labels: labels,
        HostConfig: { NetworkMode: 'host', Init: true },
      });
      if (create.status !== 201) throw new Error(`create ${name}: HTTP ${create.status} ${create.body}`);
      const id = create.json<{ Id: string }>().Id;
      const start = await engine.api('POST', `/containers/${id}/start`);
      if (start.status !== 204) throw new Error(`start ${name}: HTTP ${start.status} ${start.body}`);
      return id;
    },
    async stop(name) {
      const r = await engine.api('POST', `/containers/${encodeURIComponent(name)}/stop?t=1`);
      if (r.status !== 204 && r.status !== 304) throw new Error(`stop ${name}: HTTP ${r.status} ${r.body}`);
    },
    async pid(name) {
      const r = await engine.api('GET', `/containers/${encodeURIComponent(name)}/json`);
      return r.json<{ State: { Pid: number } }>().State.Pid;
    },
    async restart(whileDown) {
      await kill();
      await whileDown?.();
      const err = await launch();
      if (err) throw new Error(err);
    },
    log: () => tail(logPath, 4000),
  };

  t.after(async () => {
    if (existsSync(socketPath)) {
      const list = await engine.api('GET', '/containers/json?all=true').catch(() => undefined);
      for (const c of list?.status === 200 ? list.json<{ Id: string }[]>() : []) {
        await engine.api('DELETE', `/containers/${c.Id}?force=true`).catch(() => undefined);
      }
    }
    await kill();
    if (kind === 'podman') spawnSync('podman', ['system', 'reset', '-f'], { env, stdio: 'ignore' });
    for (const m of mountsUnder(dir).reverse()) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });

  const err = await launch();
  if (err) return err;
  const imported = await importImage(engine, dir);
  if (imported) return imported;
  return engine;
}

/**
 * The engine, or a loud skip: under CI=true an engine that cannot start fails the test, since
 * .ci/run installs everything it needs.
 */
export async function engineOrSkip(t: TestContext, kind: EngineKind): Promise<RealEngine | undefined> {
  const r = await startEngine(t, kind);
  if (typeof r !== 'string') return r;
  if (process.env.CI === 'true') throw new Error(`the ${kind} engine did not start under CI: ${r}`);
  process.stderr.write(`\n*** SKIPPED: ${kind} interop test: ${r} ***\n\n`);
  t.skip(`${kind} engine unavailable: ${r}`);
  return undefined;
}

function missingTools(kind: EngineKind): string[] {
  const tools = [kind === 'docker' ? 'dockerd' : 'podman', 'cc', 'tar', ...(kind === 'podman' ? ['runc'] : [])];
  return tools.filter((tool) => !onPath(tool)).concat(existsSync('/bin/busybox') ? [] : ['busybox (busybox-static)']);
}

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** overlay2 where the kernel allows it (as the recipe: fall back to vfs). */
function storageDriver(dir: string): string {
  const probe = join(dir, 'overlay-probe');
  for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(probe, d), { recursive: true });
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${probe}/lower,upperdir=${probe}/upper,workdir=${probe}/work`, `${probe}/merged`], { stdio: 'ignore' });
  if (r.status === 0) spawnSync('umount', [`${probe}/merged`], { stdio: 'ignore' });
  rmSync(probe, { recursive: true, force: true });
  return r.status === 0 ? 'overlay2' : 'vfs';
}

/** As ci-podman.sh: runc, cgroupfs, file events, no network namespace by default, ulimits within the VM's hard limits. */
function podmanEnv(dir: string): NodeJS.ProcessEnv {
  const hard = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim() || '1048576';
  const conf = join(dir, 'containers.conf');
  writeFileSync(
    conf,
    [
      '[containers]',
      `default_ulimits = ["nofile=${hard}:${hard}", "nproc=32768:32768"]`,
      'netns = "none"',
      'log_driver = "k8s-file"',
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${dir}/events.log"`,
      `tmp_dir = "${dir}/tmp"`,
      '',
    ].join('\n'),
  );
  const storage = join(dir, 'storage.conf');
  writeFileSync(storage, ['[storage]', 'driver = "overlay"', `graphroot = "${dir}/root"`, `runroot = "${dir}/run"`, ''].join('\n'));
  return { ...process.env, CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage };
}

async function importImage(engine: RealEngine, dir: string): Promise<string | undefined> {
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  for (const applet of ['sh', 'sleep', 'cat']) symlinkSync('busybox', join(root, 'bin', applet));
  writeFileSync(join(dir, 'echo.c'), ECHO_C);
  const cc = spawnSync('cc', ['-static', '-O2', '-o', join(root, 'bin', 'echo-server'), join(dir, 'echo.c')], { encoding: 'utf8' });
  if (cc.status !== 0) return `cc -static failed: ${cc.stderr.slice(0, 500)}`;
  const tar = spawnSync('tar', ['-C', root, '-c', '.'], { maxBuffer: 64 << 20 });
  if (tar.status !== 0) return 'tar of the root filesystem failed';
  const [repo, tag] = IMAGE.split(/:(?=[^:]+$)/) as [string, string];
  const r = await engine.api('POST', `/images/create?fromSrc=-&repo=${encodeURIComponent(repo)}&tag=${tag}`, tar.stdout);
  if (r.status !== 200) return `image import: HTTP ${r.status} ${r.body.slice(0, 300)}`;
  return undefined;
}

function request(socketPath: string, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = payload
    ? { 'content-type': Buffer.isBuffer(body) ? 'application/x-tar' : 'application/json', 'content-length': String(payload.length) }
    : {};
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method, headers, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text, json: <T>() => JSON.parse(text) as T });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function ping(socketPath: string): Promise<boolean> {
  if (!existsSync(socketPath)) return false;
  try {
    return (await request(socketPath, 'GET', '/_ping')).status === 200;
  } catch {
    return false;
  }
}

function tail(path: string, bytes = 600): string {
  try {
    return readFileSync(path, 'utf8').slice(-bytes).trim();
  } catch {
    return '(no log)';
  }
}

function mountsUnder(dir: string): string[] {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m === dir || m.startsWith(`${dir}/`));
  } catch {
    return [];
  }
}

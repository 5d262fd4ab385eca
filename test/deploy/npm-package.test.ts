import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertRelays, routesConfig, startProcess } from './support/relay-check.js';

// The npm package (docs/deploy.md): `npm pack` and `npm install -g` of the tarball into a
// temporary prefix, offline: the runtime dependencies travel in the tarball (bundleDependencies),
// so the registry is never asked. Each global install takes about 20 s (npm unpacks ~2500 files;
// the addon compile is part of it).
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'sluice-npm-'));
after(() => rmSync(work, { recursive: true, force: true }));
let tarball = '';
let packedFiles: string[] = [];

interface Run {
  code: number;
  out: string;
}
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd ?? root, env: opts.env ?? process.env, maxBuffer: 64 << 20, timeout: 240_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

// --ignore-scripts: the suite compiled dist/ just before the tests; `prepare` would compile it
// again under the tests that are running from it.
before(async () => {
  const r = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work]);
  assert.equal(r.code, 0, r.out);
  const info = JSON.parse(r.out.slice(r.out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info[0]!.filename);
  packedFiles = info[0]!.files.map((f) => f.path);
});

async function installGlobal(prefix: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run('npm', ['install', '-g', '--prefix', prefix, '--offline', '--foreground-scripts', '--no-audit', '--no-fund', tarball], {
    cwd: work,
    env: { ...process.env, ...env },
  });
}

async function runInstalled(t: Parameters<typeof routesConfig>[0], prefix: string): Promise<{ kind: string; output: string }> {
  const routes = await routesConfig(t);
  const config = join(work, `sluice-${routes.udpPort}.yaml`);
  writeFileSync(config, routes.yaml);
  // `sluice` found on PATH: the prefix's bin, and node for its #! line.
  const env = { ...process.env, PATH: `${join(prefix, 'bin')}:${dirname(process.execPath)}` };
  const check = await run('sluice', ['check', '--config', config], { env, cwd: work });
  assert.equal(check.code, 0, check.out);
  const p = startProcess(t, 'sluice', ['run', '--config', config], { env, cwd: work });
  const kind = await assertRelays(t, routes);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0, p.output());
  return { kind, output: p.output() };
}

test('npm package: the tarball carries built JavaScript, the addon sources and the bundled dependencies, not tests or TypeScript', () => {
  for (const f of ['bin/sluice', 'dist/src/main.js', 'native/binding.gyp', 'native/build.mjs', 'native/src/engine.cc', 'src/admin/dashboard/index.html', 'deploy/sluice.service']) {
    assert.ok(packedFiles.includes(f), `${f} is packed`);
  }
  for (const dep of ['pino', 'yaml', 'zod', 'prom-client', 'maxmind', 'hash-wasm', 'lru-cache']) {
    assert.ok(packedFiles.includes(`node_modules/${dep}/package.json`), `${dep} is bundled`);
  }
  const ours = packedFiles.filter((f) => !f.startsWith('node_modules/'));
  const stray = ours.filter((f) => f.startsWith('dist/test/') || f.startsWith('dist/bench/') || f.endsWith('.map') || f.endsWith('.ts'));
  assert.deepEqual(stray, []);
});

test('npm package: npm install -g of the tarball, offline, compiles the addon and puts a sluice on PATH that checks and relays UDP and TCP', { timeout: 240_000 }, async (t) => {
  const prefix = join(work, 'with-compiler');
  const install = await installGlobal(prefix);
  assert.equal(install.code, 0, install.out);
  assert.match(install.out, /^sluice: native UDP datapath built \(/m);
  assert.ok(existsSync(join(prefix, 'lib', 'node_modules', 'sluice', 'native', 'build', 'Release', 'sluice_udp.node')));
  const { kind } = await runInstalled(t, prefix);
  assert.equal(kind, 'native');
});

test('npm package: without a C++ compiler the install still succeeds with one line, and sluice relays on the js datapath', { timeout: 240_000 }, async (t) => {
  const prefix = join(work, 'no-compiler');
  const install = await installGlobal(prefix, { CXX: '/nonexistent/c++', CC: '/nonexistent/cc' });
  assert.equal(install.code, 0, install.out);
  const lines = install.out.split('\n').filter((l) => l.startsWith('sluice: native UDP datapath'));
  assert.equal(lines.length, 1, install.out);
  assert.match(lines[0]!, /not built \(build failed, see .*native\/build\.log\); the js datapath will be used/);
  const { kind, output } = await runInstalled(t, prefix);
  assert.equal(kind, 'js');
  assert.equal(output.split('\n').filter((l) => l.includes('native UDP datapath unavailable')).length, 1, 'one runtime line says why');
});

test('npm ci --omit=dev succeeds without TypeScript; bin/sluice then says it is not built, and runs once dist/ is there', { timeout: 120_000 }, async () => {
  const clone = join(work, 'clone');
  for (const f of ['package.json', 'package-lock.json', 'bin', 'scripts/prepare.mjs', 'native/binding.gyp', 'native/build.mjs', 'native/src']) {
    cpSync(join(root, f), join(clone, f), { recursive: true });
  }
  const ci = await run('npm', ['ci', '--omit=dev', '--offline', '--foreground-scripts', '--no-audit', '--no-fund'], { cwd: clone, env: { ...process.env, SLUICE_SKIP_NATIVE: '1' } });
  assert.equal(ci.code, 0, ci.out);
  assert.match(ci.out, /TypeScript is not installed \(--omit=dev\) and dist\/ is not built/);
  assert.ok(!existsSync(join(clone, 'node_modules', 'typescript')), 'no dev dependency installed');
  assert.ok(readdirSync(join(clone, 'node_modules')).includes('pino'));
  const bare = await run(process.execPath, [join(clone, 'bin', 'sluice'), '--version'], { cwd: clone });
  assert.equal(bare.code, 1);
  assert.match(bare.out, /^sluice: not built \(dist\/src\/main\.js is missing\)/);
  assert.doesNotMatch(bare.out, /at .*\.js:\d+/, 'no stack trace');

  // A build stage's dist/ copied in: the production install runs it.
  cpSync(join(root, 'dist', 'src'), join(clone, 'dist', 'src'), { recursive: true });
  const config = join(clone, 'sluice.yaml');
  writeFileSync(config, 'routes:\n  dns:\n    listen: udp://127.0.0.1:5353\n    upstream: 127.0.0.1:53\n');
  const check = await run(process.execPath, [join(clone, 'bin', 'sluice'), 'check', '--config', config], { cwd: clone });
  assert.equal(check.code, 0, check.out);
});

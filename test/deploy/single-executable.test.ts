import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect as connectTls } from 'node:tls';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEngine } from '../discovery/support/real-engine.js';
import { freePort, readAll, tcpServer } from '../helpers/net.js';
import { assertRelays, connectWithRetry, routesConfig, startProcess } from './support/relay-check.js';

// The single executable (scripts/build-sea.mjs) and the container image made from it
// (scripts/build-image.sh), built once for the whole file: about 6 s for the executable and 2 s
// for the image's root filesystem here, plus the Docker engine's start and import (~10 s).
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'sluice-sea-'));
after(() => rmSync(work, { recursive: true, force: true }));
// The executable alone in a folder of its own: nothing of this checkout next to it.
const sea = join(work, 'bin', 'sluice');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, env, maxBuffer: 64 << 20, timeout: 300_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

before(async () => {
  const r = await run(process.execPath, [join(root, 'scripts', 'build-sea.mjs'), '--out', sea]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /native addon\)/, 'the addon is packed (npm ci built it)');
});

test('single executable: runs with no node on PATH and no package around it, relays UDP and TCP on the native datapath, serves the dashboard, leaves no temporary file', { timeout: 120_000 }, async (t) => {
  const scratch = join(work, 'tmp');
  mkdirSync(scratch);
  // env -i style: no PATH to a node, no NODE_* variables; TMPDIR only so that the test can look into it.
  const env = { PATH: '/nonexistent', TMPDIR: scratch };
  const version = await run(sea, ['--version'], env);
  assert.equal(version.code, 0, version.out);
  assert.match(version.out, /^sluice \d+\.\d+\.\d+\n$/, 'the version comes from the packed package.json');

  const routes = await routesConfig(t);
  const config = join(work, 'sluice.yaml');
  writeFileSync(config, routes.yaml);
  const check = await run(sea, ['check', '--config', config], env);
  assert.equal(check.code, 0, check.out);

  const p = startProcess(t, sea, ['run', '--config', config], { env, cwd: scratch });
  assert.equal(await assertRelays(t, routes), 'native', p.output());
  const page = await fetch(`http://127.0.0.1:${routes.adminPort}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html/i);
  assert.deepEqual(readdirSync(scratch), [], 'the unpacked addon is removed once loaded');
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0, p.output());
});

test('single executable: where the addon cannot be unpacked (TMPDIR not writable) it says why once and relays on the js datapath', { timeout: 60_000 }, async (t) => {
  const routes = await routesConfig(t);
  const config = join(work, 'sluice-js.yaml');
  writeFileSync(config, routes.yaml);
  const p = startProcess(t, sea, ['run', '--config', config], { env: { PATH: '/nonexistent', TMPDIR: join(work, 'missing') } });
  assert.equal(await assertRelays(t, routes), 'js', p.output());
  const lines = p.output().split('\n').filter((l) => l.includes('native UDP datapath unavailable'));
  assert.equal(lines.length, 1, p.output());
  assert.match(lines[0]!, /cannot write the packaged addon to .*missing.*set TMPDIR/);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0, p.output());
});

test('container image: built offline from the executable (no base image), run in a real Docker engine as an unprivileged user, relays UDP and TCP, runs a gateway, reloads on SIGHUP', { timeout: 240_000 }, async (t) => {
  const engine = await startEngine(t, 'docker');
  if (typeof engine === 'string') {
    if (process.env.CI === 'true') throw new Error(`the docker engine did not start under CI: ${engine}`);
    process.stderr.write(`\n*** SKIPPED: container image test: ${engine} ***\n\n`);
    t.skip(engine);
    return;
  }
  const tag = 'localhost/sluice/sluice:test';
  const build = await run('bash', [join(root, 'scripts', 'build-image.sh'), '--sea', sea, '--tag', tag], { ...process.env, DOCKER_HOST: `unix://${engine.socketPath}` });
  assert.equal(build.code, 0, build.out);
  const image = (await engine.api('GET', `/images/${encodeURIComponent(tag)}/json`)).json<{ Config: { User: string; Entrypoint: string[] }; RootFS: { Layers: string[] } }>();
  assert.equal(image.Config.User, '10001:10001');
  assert.deepEqual(image.Config.Entrypoint, ['/usr/local/bin/sluice']);
  assert.equal(image.RootFS.Layers.length, 1, 'one layer, no base image');

  // Host networking, as the suite's engine has no bridge: the routes listen on 127.0.0.1 and
  // reach the test's echo upstreams there. The config is mounted read-only as /etc/sluice. A
  // gateway too: it makes its certificate with the image's openssl, in the state directory.
  const routes = await routesConfig(t);
  const gatewayPort = await freePort('tcp');
  const confDir = join(work, 'etc-sluice');
  mkdirSync(confDir);
  const gateway = `gateway:\n  listen: 127.0.0.1:${gatewayPort}\n  agents:\n    home: { token: "${'ab'.repeat(24)}" }\n  ports: 20000-20001\n`;
  writeFileSync(join(confDir, 'sluice.yaml'), `${routes.yaml}${gateway}`);
  chmodSync(confDir, 0o755);
  const create = await engine.api('POST', '/containers/create?name=sluice-image-test', {
    Image: tag,
    HostConfig: { NetworkMode: 'host', Binds: [`${confDir}:/etc/sluice:ro`], CapDrop: ['ALL'] },
  });
  assert.equal(create.status, 201, create.body);
  const id = create.json<{ Id: string }>().Id;
  const start = await engine.api('POST', `/containers/${id}/start`);
  assert.equal(start.status, 204, start.body);
  const logs = async () => (await engine.api('GET', `/containers/${id}/logs?stdout=true&stderr=true`)).body;
  try {
    assert.equal(await assertRelays(t, routes, 30_000), 'native');
  } catch (err) {
    throw new Error(`${(err as Error).message}\ncontainer log:\n${await logs()}`);
  }
  try {
    (await connectWithRetry(gatewayPort, 20_000)).destroy();
    const tls = connectTls({ host: '127.0.0.1', port: gatewayPort, rejectUnauthorized: false });
    await once(tls, 'secureConnect');
    assert.equal(tls.getPeerCertificate().subject.CN, 'sluice-gateway');
    tls.destroy();
  } catch (err) {
    throw new Error(`${(err as Error).message}\ncontainer log:\n${await logs()}`);
  }

  // `docker kill -s HUP` reloads: a route added to the mounted file starts answering.
  const up = await tcpServer(t);
  const added = await freePort('tcp');
  writeFileSync(join(confDir, 'sluice.yaml'), `${routes.yaml.replace('routes:\n', `routes:\n  added:\n    listen: tcp://127.0.0.1:${added}\n    upstream: 127.0.0.1:${up.port}\n`)}${gateway}`);
  const hup = await engine.api('POST', `/containers/${id}/kill?signal=HUP`);
  assert.equal(hup.status, 204, hup.body);
  const s = await connectWithRetry(added, 10_000);
  s.end('after reload');
  assert.equal((await readAll(s)).toString(), 'after reload');

  const stop = await engine.api('POST', `/containers/${id}/stop?t=10`);
  assert.equal(stop.status, 204, stop.body);
  const state = (await engine.api('GET', `/containers/${id}/json`)).json<{ State: { ExitCode: number } }>().State;
  assert.equal(state.ExitCode, 0, `SIGTERM drains and exits 0:\n${await logs()}`);
});

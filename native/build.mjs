// `npm install` / `npm ci` hook: builds the native UDP datapath (docs/datapath.md) against the
// running Node's own headers, never downloading anything. It never fails the install: when the
// build cannot run or fails, it says so in one line and Sluice uses the js datapath.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const log = join(here, 'build.log');

function skip(reason) {
  console.log(`sluice: native UDP datapath not built (${reason}); the js datapath will be used`);
  process.exit(0);
}

if (process.env.SLUICE_SKIP_NATIVE === '1') skip('SLUICE_SKIP_NATIVE=1');
if (process.platform !== 'linux') skip(`needs Linux, this is ${process.platform}`);

/** node-gyp as npm runs it for lifecycle scripts, else the copy bundled with npm beside this node. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((p) => p && existsSync(p));
}

/** The directory holding include/node/node_api.h for this very node: never a download. */
function findNodeDir() {
  const candidates = [process.env.npm_config_nodedir, join(dirname(process.execPath), '..')];
  return candidates.find((d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')) && existsSync(join(d, 'include', 'node', 'common.gypi')));
}

const gyp = findNodeGyp();
if (!gyp) skip('node-gyp not found (it ships with npm)');
const nodedir = findNodeDir();
if (!nodedir) skip("this node's headers (include/node/node_api.h) not found; set npm_config_nodedir");

const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, `--directory=${here}`], {
  encoding: 'utf8',
  timeout: 5 * 60_000,
  env: { ...process.env, npm_config_nodedir: nodedir },
});
writeFileSync(log, `${r.stdout ?? ''}\n${r.stderr ?? ''}\n${r.error ? String(r.error) : ''}`);
if (r.status !== 0) skip(`build failed, see ${log}`);
console.log(`sluice: native UDP datapath built (${join(here, 'build', 'Release', 'sluice_udp.node')})`);

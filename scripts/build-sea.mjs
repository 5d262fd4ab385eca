// Builds Sluice as one Linux executable with Node's single executable applications (SEA):
//   1. esbuild bundles src/main.ts and its dependencies into one CommonJS script (SEA runs CJS only);
//   2. `node --experimental-sea-config` turns it into a blob, with package.json, the dashboard and
//      the native addon as assets (node:sea getAsset; the addon is loaded from a private temporary
//      copy at start, see src/datapath/native/binding.ts);
//   3. a copy of this very node binary gets the blob injected with postject.
// Usage: node scripts/build-sea.mjs [--out FILE] [--no-native]     (default out: dist/sea/sluice)
// Needs the dev dependencies (esbuild, postject); the result needs no Node, only glibc and libstdc++.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { values } = parseArgs({ options: { out: { type: 'string' }, 'no-native': { type: 'boolean' } } });
const out = resolve(values.out ?? join(root, 'dist', 'sea', 'sluice'));
const work = `${out}.build`;
const started = Date.now();
const step = (what) => console.log(`build-sea: ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`build-sea: builds for linux-x64 with the running node; this is ${process.platform}-${process.arch}`);
  process.exit(1);
}
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) {
  console.error(`build-sea: needs Node 20.12 or newer (SEA assets, node:sea getAsset); this is ${process.version}`);
  process.exit(1);
}
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// 1. One CommonJS file. import.meta.url has no meaning in CJS: it becomes the executable's own
// URL, which the code only uses to find files next to the package (absent in a single
// executable: those come from the assets). sodium-native is an optional native module; without
// it the tunnel uses node:crypto's ChaCha20-Poly1305 (src/protocol/tunnel/aead.ts).
const bundle = join(work, 'sluice.cjs');
await require('esbuild').build({
  entryPoints: [join(root, 'src', 'main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['sodium-native'],
  // ioredis's `debug` tries require('supports-color') (not installed) at load; left in the bundle,
  // that require makes the executable print Node's SEA warning on every start. No colours needed.
  plugins: [{
    name: 'no-supports-color',
    setup(b) {
      b.onResolve({ filter: /^supports-color$/ }, () => ({ path: 'supports-color', namespace: 'sluice-empty' }));
      b.onLoad({ filter: /.*/, namespace: 'sluice-empty' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
    },
  }],
  define: { 'import.meta.url': '__sluiceImportMetaUrl' },
  banner: { js: "const __sluiceImportMetaUrl = require('node:url').pathToFileURL(process.execPath).href;" },
  logLevel: 'warning',
  legalComments: 'none',
});
step(`bundled ${bundle}`);

// 2. The blob and its assets.
const assets = { 'package.json': join(root, 'package.json') };
for (const name of ['index.html', 'login.html', 'dashboard.js', 'dashboard.css']) assets[`dashboard/${name}`] = join(root, 'src', 'admin', 'dashboard', name);
const addon = join(root, 'native', 'build', 'Release', 'sluice_udp.node');
if (values['no-native']) console.log('build-sea: --no-native: the executable will use the js datapath');
else if (existsSync(addon)) assets['native/sluice_udp.node'] = addon;
else console.log(`build-sea: ${addon} is not built (npm install builds it); the executable will use the js datapath`);
const blob = join(work, 'sea-prep.blob');
const config = join(work, 'sea-config.json');
writeFileSync(config, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, assets }, null, 2));
const prep = spawnSync(process.execPath, ['--experimental-sea-config', config], { encoding: 'utf8' });
if (prep.status !== 0) {
  console.error(`build-sea: node --experimental-sea-config failed:\n${prep.stderr}`);
  process.exit(1);
}
step(`blob ${blob}`);

// 3. A copy of this node with the blob injected.
copyFileSync(process.execPath, `${out}.tmp`);
chmodSync(`${out}.tmp`, 0o755);
const { inject } = require('postject');
await inject(`${out}.tmp`, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2' });
rmSync(out, { force: true });
copyFileSync(`${out}.tmp`, out);
chmodSync(out, 0o755);
rmSync(`${out}.tmp`);
rmSync(work, { recursive: true, force: true });
step(`wrote ${out} (node ${process.version}, ${assets['native/sluice_udp.node'] ? 'native addon' : 'js datapath only'})`);

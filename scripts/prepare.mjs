// `prepare` (run by `npm ci`/`npm install` in a clone and by `npm pack`): compiles TypeScript to
// dist/ when the compiler is installed. A production install (`npm ci --omit=dev`) has no
// compiler: it keeps a dist/ built before (e.g. copied from a build stage) or says in one line
// how to get one, and never fails the install. `npm pack` without the compiler fails: a package
// must carry built JavaScript.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  tsc = undefined;
}
if (tsc) {
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const packing = ['pack', 'publish'].includes(process.env.npm_command ?? '');
const built = existsSync(join(root, 'dist', 'src', 'main.js'));
if (packing) {
  console.error('sluice: cannot pack: TypeScript is not installed (run `npm ci` with the dev dependencies first)');
  process.exit(1);
}
console.log(
  built
    ? 'sluice: TypeScript is not installed (--omit=dev): using the JavaScript already built in dist/'
    : 'sluice: TypeScript is not installed (--omit=dev) and dist/ is not built: install the npm package (docs/deploy.md) or build with `npm ci && npm run build` first',
);

// Runs the compiled test files with node's test runner (Node 20 has no glob support in --test).
// Usage: node scripts/test.mjs [path-prefix ...]   e.g. node scripts/test.mjs test/config
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

const root = 'dist/test';
const prefixes = process.argv.slice(2).map((p) => p.replace(/^dist\//, '').replace(/\.ts$/, ''));
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
})(root);
const chosen = files.filter((f) => prefixes.length === 0 || prefixes.some((p) => relative('dist', f).startsWith(p)));
if (chosen.length === 0) {
  console.error(`no test files match ${prefixes.join(' ') || root}`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// Every file's process loads the leak check: a file that leaves a socket, server, child process
// or timer open after its tests fails (test/helpers/leak-check.ts).
const leakCheck = pathToFileURL(join(root, 'helpers', 'leak-check.js')).href;
const r = spawnSync(process.execPath, ['--import', leakCheck, '--test', `--test-concurrency=${concurrency}`, ...chosen], { stdio: 'inherit' });
process.exit(r.status ?? 1);

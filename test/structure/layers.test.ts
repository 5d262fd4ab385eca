// The folder map of src/ (docs/architecture.md) is enforced by scripts/check-layers.mjs; this file
// runs it on src/ and shows on a made-up tree that it catches each kind of violation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const script = join(repo, 'scripts', 'check-layers.mjs');

function check(srcDir?: string) {
  const r = spawnSync(process.execPath, [script, ...(srcDir ? ['--src', srcDir] : [])], { encoding: 'utf8' });
  return { status: r.status, lines: r.stdout.trim().split('\n'), stderr: r.stderr };
}

test('src/: every folder imports only the layers below it, and no import circle spans two folders', () => {
  const r = check();
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0, `\n${r.lines.join('\n')}`);
});

test('the check catches an upward import, a sibling import, an unknown folder and a circle across folders', (t) => {
  const src = mkdtempSync(join(tmpdir(), 'sluice-layers-'));
  t.after(() => rmSync(src, { recursive: true, force: true }));
  const file = (path: string, text: string) => {
    mkdirSync(dirname(join(src, path)), { recursive: true });
    writeFileSync(join(src, path), text);
  };
  file('core/clock.ts', 'export const clock = 1;\n');
  file('protocol/codec.ts', "import { clock } from '../core/clock.js';\nexport const codec = clock;\n");
  file('config/load.ts', "import type { Rule } from '../admission/rule.js';\nexport const load = (r: Rule) => r;\n");
  file('admission/rule.ts', "import { load } from '../config/load.js';\nexport type Rule = number;\nexport const again = load;\n");
  file('gateway/exposure.ts', "export { agent } from '../agent/agent.js';\n");
  file('agent/agent.ts', "import '../core/clock.js';\nexport const agent = await import('./inner.js');\n");
  file('agent/inner.ts', "import type { agent } from './agent.js';\nexport type Inner = typeof agent;\n"); // a circle inside one folder: counted, allowed
  file('widgets/thing.ts', "import { clock } from '../core/clock.js';\nexport const thing = clock;\n");
  file('main.ts', "import { agent } from './agent/agent.js';\nimport { codec } from './protocol/codec.js';\nexport { agent, codec };\n");
  const r = check(src);
  assert.equal(r.status, 1);
  assert.deepEqual(r.lines.slice(0, -1).sort(), [
    'src/admission/rule.ts -> src/config/load.ts -> src/admission/rule.ts (an import circle across folders admission, config; 2 files in it)',
    'src/config/load.ts -> src/admission/rule.ts (layer config imports layer admission above it)',
    'src/gateway/exposure.ts -> src/agent/agent.ts (layer gateway imports layer agent, its sibling)',
    'src/widgets (folder widgets is not in the layer list of scripts/check-layers.mjs)',
  ]);
  assert.match(r.lines.at(-1)!, /^check-layers: 9 files, 4 violations \(upward=1 sibling=1 unknown=1 circle=1\); 1 circles inside one folder$/);

  // The same tree without the four faults is clean.
  rmSync(join(src, 'widgets'), { recursive: true });
  rmSync(join(src, 'gateway'), { recursive: true });
  file('config/load.ts', 'export const load = (r: number) => r;\n');
  const clean = check(src);
  assert.deepEqual([clean.status, clean.lines], [0, ['check-layers: 7 files, 0 violations (upward=0 sibling=0 unknown=0 circle=0); 1 circles inside one folder']]);
});

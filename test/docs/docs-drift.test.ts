// Documentation drift: every metric the code registers is in docs/metrics.md and nothing else is;
// every config key of the schema is documented where its section is, and every key the
// configuration tables name exists; every file a doc cites exists in the repository. Each
// failure lists exactly what is missing where, so a new metric or key shows up here at merge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema } from '../../src/config/schema.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(join(ROOT, d)).sort()) {
      if (name === 'node_modules' || name === 'dist' || name === 'build' || name.startsWith('.')) continue;
      const p = d === '' ? name : `${d}/${name}`;
      if (statSync(join(ROOT, p)).isDirectory()) walk(p);
      else if (keep(name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** `a, b` -> "  - a\n  - b", or "" when empty. */
const list = (title: string, items: readonly string[]) => (items.length === 0 ? '' : `${title}:\n${items.map((i) => `  - ${i}`).join('\n')}\n`);

// ---- metrics ---------------------------------------------------------------------------------

/** Names passed to prom-client (`name: 'sluice_x'`) or to a register helper (`counter('sluice_x', ...)`). */
function metricsInCode(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of filesUnder('src', (n) => n.endsWith('.ts'))) {
    for (const m of read(file).matchAll(/(?:name:\s*|\b(?:counter|gauge|histogram|summary)\(\s*)'(sluice_[a-z0-9_]+)'/g)) found.set(m[1]!, file);
  }
  return found;
}

/** The first cell of every table row of docs/metrics.md that names a metric. */
function metricsInDocs(): Set<string> {
  const names = new Set<string>();
  for (const m of read('docs/metrics.md').matchAll(/^\|\s*`(sluice_[a-z0-9_]+)`/gm)) names.add(m[1]!);
  return names;
}

test('docs: every metric registered in src/ has a row in docs/metrics.md, and every row is registered', () => {
  const code = metricsInCode();
  const docs = metricsInDocs();
  assert.ok(code.size >= 20, `the metric scan found ${code.size} names: is the pattern still right?`);
  const undocumented = [...code].filter(([n]) => !docs.has(n)).map(([n, file]) => `${n} (registered in ${file})`);
  const unknown = [...docs].filter((n) => !code.has(n));
  assert.equal(
    list('metrics registered in code but without a row in docs/metrics.md', undocumented) +
      list('metrics with a row in docs/metrics.md that no code registers', unknown),
    '',
  );
});

// ---- config keys ---------------------------------------------------------------------------

interface Def {
  type?: string;
  shape?: Record<string, unknown>;
  valueType?: unknown;
  element?: unknown;
  innerType?: unknown;
  in?: unknown;
  options?: unknown[];
}
const defOf = (s: unknown): Def | undefined => (s as { _zod?: { def?: Def } } | undefined)?._zod?.def;

/** Every key path of the schema: `routes.<name>.udp.idleTimeout`, `agent.turnServers[].server`, ... */
function schemaKeyPaths(schema: unknown, prefix: string, out: string[]): string[] {
  const def = defOf(schema);
  if (!def) return out;
  if (def.innerType !== undefined) return schemaKeyPaths(def.innerType, prefix, out);
  switch (def.type) {
    case 'pipe':
      return schemaKeyPaths(def.in, prefix, out);
    case 'object':
      for (const [key, value] of Object.entries(def.shape ?? {})) {
        const path = prefix === '' ? key : `${prefix}.${key}`;
        out.push(path);
        schemaKeyPaths(value, path, out);
      }
      return out;
    case 'record':
      return schemaKeyPaths(def.valueType, `${prefix}.<name>`, out);
    case 'array':
      return schemaKeyPaths(def.element, `${prefix}[]`, out);
    case 'union':
      for (const o of def.options ?? []) schemaKeyPaths(o, prefix, out);
      return out;
    default:
      return out;
  }
}

/** Where each top-level section's keys are documented (configuration.md points to the others). */
const SECTION_DOCS: Record<string, readonly string[]> = {
  routes: ['docs/configuration.md'],
  acl: ['docs/configuration.md', 'docs/access-control.md'],
  geoip: ['docs/configuration.md'],
  crowdsec: ['docs/configuration.md', 'docs/crowdsec.md'],
  accessLog: ['docs/configuration.md'],
  log: ['docs/configuration.md'],
  lifecycle: ['docs/configuration.md'],
  datapath: ['docs/configuration.md'],
  congestion: ['docs/configuration.md'],
  scheduler: ['docs/configuration.md'],
  gateway: ['docs/expose.md', 'docs/fleet.md', 'docs/pools.md'],
  agent: ['docs/expose.md', 'docs/connect.md', 'docs/pools.md', 'docs/fleet.md'],
  docker: ['docs/configuration.md', 'docs/containers.md'],
  metrics: ['docs/configuration.md'],
  flowLog: ['docs/configuration.md'],
  conntrack: ['docs/conntrack.md'],
  admin: ['docs/configuration.md', 'docs/admin.md'],
  sourcePrefix: ['docs/configuration.md'],
  bans: ['docs/configuration.md', 'docs/bans.md'],
};

const ROUTE_PART_DOCS = ['docs/configuration.md', 'docs/access-control.md'];

/** A key counts as documented when its doc names it in backticks (`key`, `a.key`, `key.sub`, `key: v`) or as a YAML key. */
function documents(text: string, key: string): boolean {
  const k = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`\`(?:[^\`\\s]*\\.)?${k}(?:[.:][^\`]*)?\``).test(text) || new RegExp(`(?:^|[\\s{,])${k}:(?:\\s|$)`, 'm').test(text);
}

test('docs: every config key of the schema is documented in its section\'s doc, and the configuration tables name only real keys', () => {
  const paths = schemaKeyPaths(configSchema, '', []);
  assert.ok(paths.length > 100, `the schema walk found ${paths.length} keys: is it still right?`);
  const sections = new Set(paths.filter((p) => !/[.[]/.test(p)));
  const missingSection = [...sections].filter((s) => SECTION_DOCS[s] === undefined);
  const undocumented: string[] = [];
  for (const path of paths) {
    const section = SECTION_DOCS[path.split(/[.[]/)[0]!];
    if (!section) continue;
    // udp, tcp and acl below a route, a service or a connect listener are a route's parts,
    // documented once in configuration.md (and access-control.md).
    const docs = /\.(udp|tcp|acl)\./.test(path) ? [...section, ...ROUTE_PART_DOCS] : section;
    const key = path.slice(path.search(/[^.[\]]+$/));
    if (!docs.some((d) => documents(read(d), key))) undocumented.push(`${path} (looked in ${docs.join(', ')})`);
  }
  // Reverse: the first cell of each `| key | default | ... |` table in configuration.md.
  const known = new Set(paths.map((p) => p.slice(p.search(/[^.[\]]+$/))));
  const unknown: string[] = [];
  let inKeyTable = false;
  for (const line of read('docs/configuration.md').split('\n')) {
    if (/^\|\s*key\s*\|/i.test(line)) inKeyTable = true;
    else if (!line.startsWith('|')) inKeyTable = false;
    else if (inKeyTable && !/^\|\s*-/.test(line)) {
      const cell = line.split('|')[1]!;
      for (const m of cell.matchAll(/`([^`]+)`/g)) {
        for (const part of m[1]!.split('.')) if (part !== '*' && !part.startsWith('<') && !known.has(part)) unknown.push(`${m[1]} (docs/configuration.md: ${line.slice(0, 60)}...)`);
      }
    }
  }
  assert.equal(
    list('top-level config sections with no doc assigned in this test (SECTION_DOCS)', missingSection) +
      list('config keys in the schema that their doc does not name', undocumented) +
      list('keys in the tables of docs/configuration.md that the schema does not have', unknown),
    '',
  );
});

// ---- cited files ---------------------------------------------------------------------------

/**
 * Paths a doc cites: `dir/file.ext` tokens, Markdown links, and bare source file names in
 * backticks. A cited path must exist relative to the repository, to the doc, or to src/ (code
 * paths are often written from src/). `../shared/...` marks developers' material beside the
 * repository, and `./x` an example path of the reader's own; neither is checked.
 */
test('docs: every file a doc cites exists in the repository', () => {
  const docs = [...filesUnder('docs', (n) => n.endsWith('.md')), 'README.md'];
  const basenames = new Set(filesUnder('', () => true).map((p) => basename(p)));
  const missing: string[] = [];
  const exists = (doc: string, p: string) => [p, join(dirname(doc), p), join('src', p)].some((c) => existsSync(join(ROOT, c)));
  for (const doc of docs) {
    read(doc).split('\n').forEach((line, i) => {
      const at = `${doc}:${i + 1}`;
      for (const m of line.matchAll(/(?<![\w/.$-])((?:\.\.\/)*(?:[\w.-]+\/)+[\w.-]+\.(?:ts|md|js|mjs|cjs|json|sh|c|cc|h|gyp|ya?ml|hex|txt|service|mmdb|pem|conf))(?![\w/])/g)) {
        const p = m[1]!;
        if (p.startsWith('../shared/') || p.startsWith('./') || p.startsWith('...')) continue;
        if (!exists(doc, p)) missing.push(`${at}: ${p}`);
      }
      for (const m of line.matchAll(/\$PWD\/([\w./-]+)/g)) if (!exists(doc, m[1]!)) missing.push(`${at}: $PWD/${m[1]}`);
      for (const m of line.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(m[1]!)) continue;
        if (!existsSync(join(ROOT, dirname(doc), m[1]!))) missing.push(`${at}: link ${m[1]}`);
      }
      for (const m of line.matchAll(/`([\w-]+\.(?:ts|js|mjs))`/g)) {
        const name = m[1]!.replace(/\.js$/, '.ts');
        if (!basenames.has(name) && !basenames.has(m[1]!)) missing.push(`${at}: ${m[1]} (no file of that name)`);
      }
    });
  }
  assert.equal(list('files cited in docs that are not in the repository', missing), '');
});

// ---- command-line flags --------------------------------------------------------------------

/** `--name` and `-x` tokens of a text. */
const flagsOf = (text: string) => new Set([...text.matchAll(/(?<![\w-])(--?[a-zA-Z][\w-]*)/g)].map((m) => m[1]!));

test('docs: every flag a usage text offers is in the docs, and every flag row of the docs is offered', async () => {
  const { HELP, COMMAND_HELP } = await import('../../src/cli/help.js');
  const { STATUS_HELP } = await import('../../src/cli/status.js');
  const { UDPEXPOSER_USAGE } = await import('../../src/cli/udpexposer.js');
  const usages: [string, string, string][] = [
    ['sluice --help', [HELP, ...Object.values(COMMAND_HELP)].join('\n'), 'docs/cli.md'],
    ['sluice status --help', STATUS_HELP, 'docs/admin.md'],
    ['sluice udpexposer --help', UDPEXPOSER_USAGE, 'docs/udpexposer.md'],
  ];
  const missing: string[] = [];
  const unknown: string[] = [];
  for (const [usage, text, doc] of usages) {
    const offered = flagsOf(text);
    const documented = flagsOf(read(doc));
    for (const f of offered) if (!documented.has(f)) missing.push(`${f} (offered by ${usage}, not in ${doc})`);
    // Rows of flag tables: | `-c`, `--local-connect-addr` | ... |
    for (const line of read(doc).split('\n')) {
      if (!/^\|\s*`-/.test(line)) continue;
      for (const f of flagsOf(line.split('|')[1]!)) if (!offered.has(f)) unknown.push(`${f} (a row of ${doc}, not offered by ${usage})`);
    }
  }
  assert.equal(list('flags missing from the docs', missing) + list('flags documented that the command does not offer', unknown), '');
});

// The folder map of src/ (docs/architecture.md), checked: a folder imports only folders listed
// before it in LAYERS (or itself), and no import circle spans files of two folders.
// Usage: node scripts/check-layers.mjs [--src DIR] [--circles]   exit 0 when clean, 1 with one line per
// violation; --circles also lists the circles inside one folder (allowed, but worth removing).
// Type-only and dynamic imports count: a type is a dependency on its owner's vocabulary.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layers, lowest first: the one place the order lives. A folder may import folders of a lower
 * rank. Folders in one inner array share a rank and are siblings: neither imports the other.
 * `.` is the files directly in src/ other than main.ts (the composition root until it has its folder).
 */
export const LAYERS = [
  'core',
  'protocol',
  'config',
  'datapath',
  'observe',
  'admission',
  'upstream',
  'turn',
  'ice',
  'session',
  'listen',
  'udpexposer',
  'fleet',
  ['gateway', 'agent'],
  'discovery',
  'admin',
  'ops',
  ['root', 'node', '.'],
  'cli',
  'main.ts',
];

/** rank and sibling group of every known folder. */
function ranks(layers) {
  const out = new Map();
  layers.forEach((entry, rank) => {
    for (const name of Array.isArray(entry) ? entry : [entry]) out.set(name, rank);
  });
  return out;
}

/** The folder (layer name) of a path relative to src/, with '/' separators. */
export function folderOf(rel) {
  const parts = rel.split('/');
  if (parts.length === 1) return rel === 'main.ts' ? 'main.ts' : '.';
  return parts[0];
}

function listTs(dir) {
  const files = [];
  (function walk(d) {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(p);
    }
  })(dir);
  return files;
}

/** Relative import specifiers of one file resolved to .ts files under `srcDir` (others are ignored). */
function importsOf(file, srcDir) {
  const found = ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles;
  const out = [];
  for (const { fileName } of found) {
    if (!fileName.startsWith('.')) continue;
    let target = resolve(dirname(file), fileName).replace(/\.(m?js)$/, (_, ext) => (ext === 'mjs' ? '.mts' : '.ts'));
    if (!target.endsWith('.ts') && existsSync(join(target, 'index.ts'))) target = join(target, 'index.ts');
    const rel = relative(srcDir, target);
    if (rel.startsWith('..') || !target.endsWith('.ts')) continue;
    out.push(rel.split(sep).join('/'));
  }
  return out;
}

/** Strongly connected components of `graph` (Map file -> Set of files), Tarjan's, iterative. */
function components(graph) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const out = [];
  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    const work = [[root, [...(graph.get(root) ?? [])], 0]];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [v, edges] = frame;
      if (frame[2] < edges.length) {
        const w = edges[frame[2]++];
        if (!graph.has(w)) continue;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push([w, [...(graph.get(w) ?? [])], 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(v)));
      }
      if (low.get(v) === index.get(v)) {
        const comp = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          comp.push(w);
        } while (w !== v);
        if (comp.length > 1) out.push(comp.sort());
      }
    }
  }
  return out;
}

/** The shortest path from `from` back to `from` inside `members` (breadth first). */
function shortestCycle(graph, from, members) {
  const prev = new Map();
  const queue = [from];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === from) {
        const path = [v];
        while (path[0] !== from) path.unshift(prev.get(path[0]));
        return [...path, from];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [from];
}

/**
 * Every violation under `srcDir`: `{ kind: 'upward' | 'sibling' | 'unknown' | 'circle', line }`,
 * plus `folderCircles`, the circles that stay inside one folder (not violations), one line each.
 */
export function checkLayers(srcDir, layers = LAYERS) {
  const rank = ranks(layers);
  const graph = new Map();
  for (const file of listTs(srcDir)) {
    const rel = relative(srcDir, file).split(sep).join('/');
    graph.set(rel, new Set(importsOf(file, srcDir)));
  }
  const violations = [];
  const unknown = new Set();
  for (const [file, targets] of graph) {
    const a = folderOf(file);
    if (!rank.has(a)) unknown.add(a);
    for (const target of targets) {
      const b = folderOf(target);
      if (a === b || !rank.has(a) || !rank.has(b)) continue;
      if (rank.get(b) > rank.get(a)) violations.push({ kind: 'upward', line: `src/${file} -> src/${target} (layer ${a} imports layer ${b} above it)` });
      else if (rank.get(b) === rank.get(a)) violations.push({ kind: 'sibling', line: `src/${file} -> src/${target} (layer ${a} imports layer ${b}, its sibling)` });
    }
  }
  for (const name of [...unknown].sort()) {
    violations.push({ kind: 'unknown', line: `src/${name === '.' ? '' : name} (folder ${name} is not in the layer list of scripts/check-layers.mjs)` });
  }
  const folderCircles = [];
  for (const comp of components(graph)) {
    const folders = [...new Set(comp.map(folderOf))].sort();
    const cycle = shortestCycle(graph, comp[0], new Set(comp));
    if (folders.length === 1) {
      folderCircles.push(`${cycle.map((f) => `src/${f}`).join(' -> ')} (a circle inside ${folders[0]}; ${comp.length} files in it)`);
      continue;
    }
    violations.push({
      kind: 'circle',
      line: `${cycle.map((f) => `src/${f}`).join(' -> ')} (an import circle across folders ${folders.join(', ')}; ${comp.length} files in it)`,
    });
  }
  return { violations, files: graph.size, folderCircles };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--src');
  const srcDir = resolve(at > 0 ? process.argv[at + 1] : join(dirname(fileURLToPath(import.meta.url)), '..', 'src'));
  const { violations, files, folderCircles } = checkLayers(srcDir);
  for (const v of violations) console.log(v.line);
  if (process.argv.includes('--circles')) for (const c of folderCircles) console.log(c);
  const counts = ['upward', 'sibling', 'unknown', 'circle'].map((k) => `${k}=${violations.filter((v) => v.kind === k).length}`).join(' ');
  console.log(`check-layers: ${files} files, ${violations.length} violations (${counts}); ${folderCircles.length} circles inside one folder`);
  process.exit(violations.length === 0 ? 0 : 1);
}

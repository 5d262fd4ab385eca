// heap-by-kind.mjs: what a V8 heap snapshot holds, by object kind: self size and count per
// constructor name (or per node type for strings, arrays, code...), largest first; with BEFORE,
// what AFTER holds more than BEFORE.
//   node bench/relay/heap-by-kind.mjs AFTER.heapsnapshot [TOP] [PER] [BEFORE.heapsnapshot]
// PER divides each size and count (e.g. by the number of idle sessions).
import { readFileSync } from 'node:fs';

const [file, topArg, perArg, beforeFile] = process.argv.slice(2);
if (!file) {
  console.error('usage: heap-by-kind.mjs FILE.heapsnapshot [TOP] [PER]');
  process.exit(2);
}
const top = Number(topArg ?? 40);
const per = Number(perArg ?? 1);
/** Self size and count per kind in snapshot `path`. */
function kinds(path) {
  const snap = JSON.parse(readFileSync(path, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const nf = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const nodes = snap.nodes;
  const strings = snap.strings;
  const by = new Map();
  let total = 0;
  for (let i = 0; i < nodes.length; i += nf) {
    const type = types[nodes[i + iType]];
    const size = nodes[i + iSize];
    const name = type === 'object' || type === 'closure' || type === 'native' ? `${type}:${strings[nodes[i + iName]]}` : type === 'hidden' ? `hidden:${strings[nodes[i + iName]]}` : type;
    const e = by.get(name) ?? by.set(name, { size: 0, count: 0 }).get(name);
    e.size += size;
    e.count++;
    total += size;
}
return { by, total };
}
let { by, total } = kinds(file);
if (beforeFile) {
  const b = kinds(beforeFile);
  total -= b.total;
  for (const [name, e] of b.by) {
    const a = by.get(name) ?? by.set(name, { size: 0, count: 0 }).get(name);
    a.size -= e.size;
    a.count -= e.count;
  }
}
console.log(`total ${(total / per).toFixed(1)} B${per !== 1 ? ' per unit' : ''}`);
for (const [name, e] of [...by].sort((a, b) => b[1].size - a[1].size).slice(0, top)) {
  console.log(`${(e.size / per).toFixed(1).padStart(10)} B ${(e.count / per).toFixed(2).padStart(8)}  ${name.slice(0, 90)}`);
}

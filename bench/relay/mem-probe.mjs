// mem-probe.mjs: preloaded into a bench subject (node --expose-gc --import this file) by
// expose-idle.sh. On SIGWINCH it collects garbage fully, then appends one JSON line with
// process.memoryUsage() and the V8 heap spaces' used and committed bytes to $MEM_PROBE_OUT, so a bench can
// tell the JavaScript heap, external memory (Buffers) and the rest of RSS apart.
import { appendFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const out = process.env.MEM_PROBE_OUT;
if (out) {
  process.on('SIGWINCH', () => {
    const before = process.memoryUsage.rss();
    // The young generation as it was (a full collection may shrink it).
    const youngBeforeGc = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size;
    for (let i = 0; i < 3; i++) globalThis.gc?.();
    const m = process.memoryUsage();
    const used = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
    const committed = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.physical_space_size]));
    appendFileSync(out, JSON.stringify({ ...m, rssBeforeGc: before, youngBeforeGc, used, committed }) + '\n');
  });
}

import type { Registry } from 'prom-client';

/**
 * A tiny parser for the Prometheus text exposition format (version 0.0.4): enough to read the
 * samples our metrics produce. Keys are `name{a="x",b="y"}` with labels sorted by name.
 */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition sample: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    out.set(labels.length ? `${m[1]}{${labels.join(',')}}` : m[1]!, Number(m[3]));
  }
  return out;
}

/** Scrapes the registry and returns one sample; undefined when the series does not exist. */
export async function sample(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const keys = Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`);
  return parseExposition(await registry.metrics()).get(keys.length ? `${name}{${keys.join(',')}}` : name);
}

/** The exposition lines (HELP, TYPE and samples) of one metric family, as text. */
export function family(text: string, name: string): string {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`# HELP ${name} `) || l.startsWith(`# TYPE ${name} `) || l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .join('\n');
}

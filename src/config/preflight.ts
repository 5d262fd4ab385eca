import { readFile } from 'node:fs/promises';
import { isNode, LineCounter, parseDocument } from 'yaml';
import type { ConfigIssue, SluiceConfig } from './types.js';

/** The problem of a config that asks for nothing to run, or undefined. */
export function nothingToRun(config: SluiceConfig): ConfigIssue | undefined {
  if (config.routes.length > 0 || config.gateway || config.agent || config.docker || config.conntrack.enabled) return undefined;
  return { path: '', message: 'nothing to run: no routes, and no gateway:, agent:, docker: or conntrack: (enabled) section' };
}

/** What preflight needs from the layers above config: opening the GeoIP database as `run` would. */
export interface PreflightDeps {
  /** Rejects with a message naming the problem (`geoip.database: ...`) when the file is not a usable database. */
  openCountryDatabase(path: string): Promise<unknown>;
}

/**
 * What `check`, `run` and a reload verify beyond the text, so `check` passes only what `run`
 * starts: there is something to run (at start only: a reload, given the running `current`, may
 * remove every route and keep the process up), and the GeoIP database opens (not opened again
 * when `current` has the same one). `text` (the file's content) gives the problems their lines.
 */
export async function preflight(config: SluiceConfig, text: string | undefined, deps: PreflightDeps, current?: SluiceConfig): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  const empty = current ? undefined : nothingToRun(config);
  if (empty) issues.push(empty);
  const db = config.geoip?.database;
  if (db !== undefined && db !== current?.geoip?.database) {
    try {
      await deps.openCountryDatabase(db);
    } catch (err) {
      const message = (err as Error).message.replace(/^geoip\.database: /, '');
      issues.push({ path: 'geoip.database', line: lineOf(text, ['geoip', 'database']), message });
    }
  }
  return issues;
}

/** preflight() for a config file: reads it again for the lines. */
export async function preflightFile(config: SluiceConfig, path: string, deps: PreflightDeps, current?: SluiceConfig): Promise<ConfigIssue[]> {
  return preflight(config, await readFile(path, 'utf8').catch(() => undefined), deps, current);
}

function lineOf(text: string | undefined, path: string[]): number | undefined {
  if (text === undefined) return undefined;
  const lines = new LineCounter();
  const node = parseDocument(text, { lineCounter: lines }).getIn(path, true);
  return isNode(node) && node.range ? lines.linePos(node.range[0]).line : undefined;
}

import { SluiceError } from '../core/errors.js';

export interface ParsedArgs {
  readonly command: string | undefined;
  readonly flags: ReadonlyMap<string, string | true>;
  readonly positional: readonly string[];
}

/**
 * Minimal flag parser: `--name value`, `--name=value`, and boolean flags listed in `booleans`.
 * Unknown flags are errors so a typo never silently changes behaviour.
 */
export function parseArgs(argv: readonly string[], known: Record<string, 'string' | 'boolean'>): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = (eq >= 0 ? arg.slice(0, eq) : arg).replace(/^--?/, '');
    const kind = known[name];
    if (!kind) throw new SluiceError('SLUICE_ERR_USAGE', `unknown flag ${arg.split('=')[0]}`);
    if (kind === 'boolean') {
      flags.set(name, true);
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') throw new SluiceError('SLUICE_ERR_USAGE', `flag --${name} needs a value`);
    flags.set(name, value);
  }
  return { command: positional[0], flags, positional: positional.slice(1) };
}

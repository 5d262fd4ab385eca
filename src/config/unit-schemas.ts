import { z } from 'zod';
import { parseDurationMs } from '../core/duration.js';
import { parseSizeBytes } from '../core/size.js';
import { expecting } from './issue-text.js';

/** The config's units, one schema each, shared by every section (schema.ts, observe-schema.ts, docker-config.ts). */

/** A duration (core/duration.ts): `30s`, `10m`, `250ms`; parsed to milliseconds. */
export const duration = expecting(z.string(), 'a duration such as 30s, 10m or 250ms').transform((text, ctx) => {
  const ms = parseDurationMs(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as 30s, 10m, 250ms; got "${text}"` });
    return z.NEVER;
  }
  return ms;
});

/** A byte size (core/size.ts): `100MiB`, `500KB` or a whole number of bytes, above 0. */
export const size = expecting(z.union([z.string(), z.number()]), 'a size such as 100MiB or a number of bytes').transform((input, ctx) => {
  const bytes = parseSizeBytes(input);
  if (bytes === undefined || bytes === 0) {
    ctx.addIssue({ code: 'custom', message: `expected a size such as 100MiB, 512KiB or a whole number of bytes above 0; got "${input}"` });
    return z.NEVER;
  }
  return bytes;
});

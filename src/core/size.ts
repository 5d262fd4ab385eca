const UNITS: Record<string, number> = {
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/;

/**
 * Parses a byte size: a whole number of bytes (`1048576`, as a number or text) or a number with a
 * unit (`100MiB`, `1.5GiB`, `500KB`; SI units are powers of 1000, IEC units powers of 1024).
 * Returns undefined when malformed or not a whole number of bytes.
 */
export function parseSizeBytes(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  const m = SIZE.exec(input.trim());
  if (!m) return undefined;
  const bytes = Number(m[1]) * UNITS[m[2] ?? 'B']!;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

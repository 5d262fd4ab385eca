/**
 * Byte rates and sizes as people write them in a config. Rates: a number then `bit/s`, `kbit/s`,
 * `Mbit/s`, `Gbit/s` (decimal, like every link speed) or `B/s`, `kB/s`, `MB/s`, `GB/s` (decimal),
 * `KiB/s`, `MiB/s`, `GiB/s` (binary); `bps`/`kbps`/`Mbps`/`Gbps` are accepted for bit rates. Sizes:
 * a plain number of bytes or a number then `B`, `kB`, `MB`, `KiB`, `MiB`. Results are bytes
 * (per second); parsers return an error text naming what was expected instead of throwing.
 */
const RATE_UNITS: Record<string, number> = {
  'bit/s': 1 / 8, 'kbit/s': 1e3 / 8, 'mbit/s': 1e6 / 8, 'gbit/s': 1e9 / 8,
  bps: 1 / 8, kbps: 1e3 / 8, mbps: 1e6 / 8, gbps: 1e9 / 8,
  'b/s': 1, 'kb/s': 1e3, 'mb/s': 1e6, 'gb/s': 1e9,
  'kib/s': 1024, 'mib/s': 1024 ** 2, 'gib/s': 1024 ** 3,
};
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
const NUMBER_UNIT = /^(\d+(?:\.\d+)?)\s*([A-Za-z/]+)$/;

/** `10Mbit/s` -> 1_250_000 (bytes per second); an error text when malformed or not positive. */
export function parseByteRate(text: string): number | string {
  const m = NUMBER_UNIT.exec(text.trim());
  // Units differ only by case between bits and bytes (Mb/s vs MB/s) in some writings; Sluice
  // refuses that ambiguity: bits are spelt `bit`, bytes `B`.
  const unit = m?.[2];
  const factor = unit === undefined ? undefined : /bit|bps/i.test(unit) || /B/.test(unit) ? RATE_UNITS[unit.toLowerCase()] : undefined;
  if (!m || factor === undefined) return `expected a rate such as 10Mbit/s, 500kbit/s or 2MB/s; got "${text}"`;
  const bytes = Number(m[1]) * factor;
  if (!(bytes >= 1)) return `"${text}" is less than 1 byte per second`;
  return bytes;
}

/** `256KiB`, `1MB` or a number of bytes -> bytes; an error text when malformed. */
export function parseByteSize(input: string | number): number | string {
  if (typeof input === 'number') return Number.isInteger(input) && input >= 0 ? input : `expected a whole number of bytes; got ${input}`;
  const m = NUMBER_UNIT.exec(input.trim());
  const factor = m && /B$/.test(m[2]!) ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || factor === undefined) return `expected a size such as 64KiB, 1MB or a number of bytes; got "${input}"`;
  return Math.round(Number(m[1]) * factor);
}

/** 1_250_000 -> `10Mbit/s`, for messages and the admin API. */
export function formatByteRate(bytesPerSecond: number): string {
  const bits = bytesPerSecond * 8;
  for (const [unit, f] of [['Gbit/s', 1e9], ['Mbit/s', 1e6], ['kbit/s', 1e3]] as const) if (bits >= f) return `${+(bits / f).toFixed(3)}${unit}`;
  return `${+bits.toFixed(3)}bit/s`;
}

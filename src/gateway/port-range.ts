/** Inclusive port ranges, sorted (config/gateway-schema.ts parsePortRanges). */
export type PortRanges = readonly (readonly [number, number])[];

export function inRanges(ranges: PortRanges, port: number): boolean {
  return ranges.some(([a, b]) => port >= a && port <= b);
}

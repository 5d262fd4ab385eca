/** Where a discovered route came from (src/discovery/, docs/containers.md). */
export interface RouteOrigin {
  readonly kind: 'container';
  /** Container name, without Docker's leading slash. */
  readonly container: string;
  readonly containerId: string;
  /** Which labels declared it: Sluice's `sluice.routes.*` or GoDoxy's `proxy.*`. */
  readonly labels: 'sluice' | 'godoxy';
}

/** Which labels declared a route: Sluice's `sluice.routes.*` or GoDoxy's `proxy.*`. */
export type LabelFamily = 'sluice' | 'godoxy';

/**
 * A route read from one container's labels, in the config file's shape (`routes.<name>`), not yet
 * validated: validation is the config file's own (validate.ts), so both sources accept and refuse
 * exactly the same things.
 */
export interface LabelRoute {
  readonly name: string;
  readonly family: LabelFamily;
  readonly raw: Readonly<Record<string, unknown>>;
  /** The label to name in a problem found at `path` (a key path inside the route, e.g. ['udp', 'idleTimeout']). */
  labelFor(path: readonly (string | number)[]): string;
}

/** Something wrong with a container's labels; the route it names (if any) is skipped. */
export interface LabelProblem {
  readonly route?: string;
  readonly label: string;
  readonly message: string;
}

export interface LabelParse {
  readonly routes: LabelRoute[];
  readonly problems: LabelProblem[];
}

/** Process exit codes; docs/cli.md lists the same table. */
export const EXIT = {
  ok: 0,
  runtime: 1,
  usage: 2,
  configInvalid: 3,
  startFailed: 4,
} as const;

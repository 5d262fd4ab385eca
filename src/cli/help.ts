export const HELP = `sluice: carry TCP and UDP to services behind NATs and firewalls, and control and record it

Usage:
  sluice run FILE              run the routes in FILE (SIGHUP reloads, SIGTERM drains and exits)
  sluice check FILE            validate FILE and list every problem; exits 0 when valid
  sluice demo                  run an embedded demo: echo upstreams behind a UDP and a TCP route
  sluice status [--admin URL]  routes and live sessions of a running sluice, from its admin API
  sluice bans [list|add|remove]  the ban list of a running sluice, through its admin API
  sluice udpexposer ...        udpexposer-compatible mode (its own flags; sluice udpexposer -h)
  sluice COMMAND --help        the flags of one command
  sluice --help | -h           this text
  sluice --version | -v        the version

FILE may also be given as --config FILE.

Exit codes:
  0  stopped cleanly, or the config is valid
  1  unexpected runtime failure
  2  bad command line
  3  invalid config
  4  could not start (a listener could not bind)

Docs: docs/cli.md, docs/configuration.md, docs/access-log.md, docs/admin.md
`;

/** `sluice COMMAND --help` for the commands main.ts parses itself (status and udpexposer have their own). */
export const COMMAND_HELP: Readonly<Record<string, string>> = {
  run: `Usage: sluice run FILE
       sluice run --config FILE

Runs the routes, gateway and agent of the config FILE until stopped.
  SIGHUP           reload FILE (an invalid file is rejected and the running config stays)
  SIGTERM, SIGINT  stop accepting, drain live sessions up to lifecycle.drainTimeout, exit 0
Exit codes: 0 stopped cleanly, 1 runtime failure, 2 bad command line, 3 invalid config,
4 could not start (a listener could not bind). See docs/cli.md and docs/configuration.md.
`,
  check: `Usage: sluice check FILE
       sluice check --config FILE

Validates the config FILE without running it: every problem is listed on stderr with its key
path and line, and what was expected. Prints a one-line summary on stdout when valid.
Exit codes: 0 valid, 2 bad command line, 3 invalid (or unreadable) config.
See docs/configuration.md.
`,
  demo: `Usage: sluice demo

Runs an embedded demo: an echo service (UDP and TCP) on loopback behind two routes on free
ports, with the admin API and dashboard on a free port. Prints how to try it; Ctrl-C stops it.
No config file and no flags.
`,
};

export const HELP = `sluice: carry TCP and UDP to services behind NATs and firewalls, and control and record it

Usage:
  sluice run --config FILE     run the routes in FILE (SIGHUP reloads, SIGTERM drains and exits)
  sluice check --config FILE   validate FILE and list every problem; exits 0 when valid
  sluice demo                  run an embedded demo: echo upstreams behind a UDP and a TCP route
  sluice status [--admin URL]  routes and live sessions of a running sluice, from its admin API
  sluice udpexposer ...        udpexposer-compatible mode (its own flags; sluice udpexposer -h)
  sluice --help | -h           this text
  sluice --version | -v        the version

Exit codes:
  0  stopped cleanly, or the config is valid
  1  unexpected runtime failure
  2  bad command line
  3  invalid config
  4  could not start (a listener could not bind)

Docs: docs/cli.md, docs/configuration.md, docs/access-log.md, docs/admin.md
`;

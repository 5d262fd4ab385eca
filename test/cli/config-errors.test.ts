import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runSluice } from '../helpers/cli.js';
import { tempDir } from '../helpers/peers.js';

/** Runs `sluice check` on `yaml`; returns the problem lines (without the header) and the exit code. */
async function check(t: TestContext, yaml: string): Promise<{ code: number; lines: string[]; err: string }> {
  const dir = await tempDir(t);
  const file = join(dir, 'c.yaml');
  await writeFile(file, yaml);
  const r = runSluice(t, ['check', file]);
  const code = await r.exited;
  return { code, err: r.err(), lines: r.err().split('\n').filter((l) => l.startsWith('  ')).map((l) => l.trim()) };
}

const ROUTE = 'routes:\n  dns:\n    listen: udp://127.0.0.1:5353\n    upstream: 127.0.0.1:53\n';

/** Wording of the validation and YAML libraries that must never reach the user. */
const LIBRARY_WORDS = /Invalid (option|input)|Too (small|big)|expected (number|string|array|object) to|parseAllDocuments|YAML\.|ZodError|Unexpected scalar/;

const CASES: readonly { name: string; yaml: string; want: readonly string[] }[] = [
  {
    name: 'a word where a number goes',
    yaml: `${ROUTE}    udp: { maxSessions: lots }\n`,
    want: ['routes.dns.udp.maxSessions (line 5): expected a number; got "lots"'],
  },
  {
    name: 'a number where a duration goes',
    yaml: `${ROUTE}    udp: { idleTimeout: 30 }\n`,
    want: ['routes.dns.udp.idleTimeout (line 5): expected a duration such as 30s, 10m or 250ms; got the number 30 (a duration needs a unit: 30s or 30ms)'],
  },
  {
    name: 'a port where a listen address goes',
    yaml: 'routes:\n  dns:\n    listen: 5353\n    upstream: 127.0.0.1:53\n',
    want: ['routes.dns.listen (line 3): expected a listen address such as udp://0.0.0.0:5353, tcp://[::]:443 or udp://0.0.0.0:27000-27100; got the number 5353'],
  },
  {
    name: 'routes written as a list',
    yaml: 'routes:\n  - listen: udp://127.0.0.1:5353\n    upstream: 127.0.0.1:53\n',
    want: ['routes (line 2): expected a map of route names, each with listen: and upstream:; got a list (write name: followed by its keys, not - items)'],
  },
  {
    name: 'a misspelt key, said once, with the key it stands for',
    yaml: 'routes:\n  dns:\n    listen: udp://127.0.0.1:5353\n    upstrem: 127.0.0.1:53\n',
    want: ['routes.dns.upstrem (line 4): unknown key "upstrem" (did you mean "upstream"?)'],
  },
  {
    name: 'a key one level too high, and a key in the wrong case',
    yaml: `${ROUTE}    idleTimeout: 5s\n    Udp: {}\n`,
    want: [
      'routes.dns.idleTimeout (line 5): unknown key "idleTimeout" here (it goes under udp: or tcp:)',
      'routes.dns.Udp (line 6): unknown key "Udp" (did you mean "udp"?)',
    ],
  },
  {
    name: 'a value outside its choices, and a negative count',
    yaml: `${ROUTE}    udp:\n      onLimit: evict-lr\n      maxSessions: -1\n`,
    want: [
      'routes.dns.udp.onLimit (line 6): expected one of reject, evict-lru; got "evict-lr" (did you mean "evict-lru"?)',
      'routes.dns.udp.maxSessions (line 7): must be at least 0; got the number -1',
    ],
  },
  {
    name: 'a missing key is still "required"',
    yaml: 'routes:\n  dns:\n    listen: udp://127.0.0.1:5353\n',
    want: ['routes.dns.upstream (line 2): is required'],
  },
  {
    name: 'two YAML documents',
    yaml: `${ROUTE}---\nlog: { level: debug }\n`,
    want: ['(top level) (line 5): YAML: a second YAML document starts here ("---"); a config file is one document: remove the line or merge the two'],
  },
  {
    name: 'an unclosed quote, on the line where it opens',
    yaml: 'routes:\n  dns:\n    listen: udp://127.0.0.1:5353\n    upstream: "127.0.0.1:53\n  other:\n    listen: tcp://127.0.0.1:1\n',
    want: ['(top level) (line 4): YAML: a quoted value is not closed (a " or \' is missing at its end)'],
  },
  {
    name: 'indentation that does not line up',
    yaml: 'routes:\n  dns:\n    listen: udp://127.0.0.1:5353\n   upstream: 127.0.0.1:53\n',
    want: ['(top level) (line 4): YAML: the indentation does not match the lines above (the keys of one map start at the same column)'],
  },
  {
    name: 'an unquoted bracketed IPv6 address with a port',
    yaml: 'routes:\n  dns:\n    listen: udp://127.0.0.1:5353\n    upstream: [::1]:53\n',
    want: ['(top level) (line 4): YAML: unexpected text after a value; quote a value that contains [ ] { } # or ": " (an IPv6 address in brackets must be quoted: "[::1]:53")'],
  },
  {
    name: 'an unquoted bracketed IPv6 address read as a list',
    yaml: 'routes:\n  dns:\n    listen: udp://127.0.0.1:5353\n    upstream: [::1]\n',
    want: ['routes.dns.upstream (line 4): expected host:port such as 127.0.0.1:53, "[::1]:53" or 10.0.0.5:27000-27100; got a list (YAML reads [...] as a list: quote an IPv6 address with its port, e.g. "[::1]:53")'],
  },
  {
    name: 'an IPv6 address without brackets',
    yaml: 'routes:\n  dns:\n    listen: udp://127.0.0.1:5353\n    upstream: ::1:53\n',
    want: ['routes.dns.upstream (line 4): expected host:port; an IPv6 address goes in brackets, quoted in YAML: "[::1]:53"'],
  },
  {
    name: 'a key given twice',
    yaml: 'routes:\n  dns: { listen: udp://127.0.0.1:1, upstream: 127.0.0.1:2 }\n  dns: {}\n',
    want: ['(top level) (line 3): YAML: the key "dns" appears twice in the same map'],
  },
  {
    name: 'a tab used to indent',
    yaml: 'routes:\n\tdns: {}\n',
    want: ['(top level) (line 2): YAML: a tab is used to indent; YAML indents with spaces'],
  },
  {
    name: 'an unclosed brace, on the line where it opens',
    yaml: 'log: { level: info }\nroutes: { dns: { listen: udp://127.0.0.1:1 }\n',
    want: ['(top level) (line 2): YAML: a { or [ is not closed on this line, or the lines after it are not indented'],
  },
  {
    name: 'one address where a list goes',
    yaml: 'acl: { allow: 10.0.0.0/8 }\n',
    want: ['acl.allow (line 1): expected a list; got "10.0.0.0/8" (write a list: [10.0.0.0/8])'],
  },
  {
    name: 'wrong types in other sections',
    yaml: 'admin: { listen: 9090, tokn: x }\nflowLog: { maxBytes: [1] }\nlifecycle: { watch: "yes" }\nrotes: {}\n',
    want: [
      'admin.tokn (line 1): unknown key "tokn" (did you mean "token"?)',
      'admin.listen (line 1): expected IP:PORT such as 127.0.0.1:9090; got the number 9090',
      'flowLog.maxBytes (line 2): expected a size such as 100MiB or a number of bytes; got a list',
      'lifecycle.watch (line 3): expected true or false; got "yes"',
      'rotes (line 4): unknown key "rotes" (did you mean "routes"?)',
    ],
  },
];

for (const c of CASES) {
  test(`check: ${c.name}`, async (t) => {
    const r = await check(t, c.yaml);
    assert.equal(r.code, 3, r.err);
    assert.deepEqual(r.lines, c.want);
    assert.doesNotMatch(r.err, LIBRARY_WORDS, 'no wording of the validation or YAML library');
    assert.doesNotMatch(r.err, /\bat .*\.js:\d+/, 'no stack trace');
  });
}

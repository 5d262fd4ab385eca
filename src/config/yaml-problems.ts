import type { LineCounter, YAMLError } from 'yaml';
import type { ConfigIssue } from './types.js';

/**
 * YAML syntax errors in plain words, each on the line a person would fix. The YAML library's
 * own messages name its API ("please use YAML.parseAllDocuments()") or its parser states; the
 * codes are stable, so they are mapped here and the library's text is never shown.
 */
const TEXT: Record<string, string> = {
  MULTIPLE_DOCS: 'a second YAML document starts here ("---"); a config file is one document: remove the line or merge the two',
  TAB_AS_INDENT: 'a tab is used to indent; YAML indents with spaces',
  BAD_INDENT: 'the indentation does not match the lines above (the keys of one map start at the same column)',
  DUPLICATE_KEY: 'this key appears twice in the same map',
  MULTILINE_IMPLICIT_KEY: 'a key without a value: write "key: value" (a colon and a space after the key)',
  BLOCK_AS_IMPLICIT_KEY: 'a second "key:" on one line; quote a value that contains ": "',
  UNEXPECTED_TOKEN: 'unexpected text after a value; quote a value that contains [ ] { } # or ": "',
  BAD_SCALAR_START: 'a value cannot start with this character unquoted (@ ` | > % and others): quote it',
  BAD_DQ_ESCAPE: 'an unknown escape in a "double-quoted" value; use single quotes for backslashes',
  BLOCK_IN_FLOW: 'a block (indented) value inside { } or [ ]; write it on one line or drop the brackets',
  NON_STRING_KEY: 'a key must be a plain name',
  BAD_ALIAS: 'an alias (*name) names no anchor (&name) above it',
  KEY_OVER_1024_CHARS: 'a key longer than 1024 characters',
};

export function yamlProblems(errors: readonly YAMLError[], text: string, lines: LineCounter): ConfigIssue[] {
  const seen = new Set<number>();
  const out: ConfigIssue[] = [];
  for (const e of errors) {
    let line = lines.linePos(e.pos[0]).line;
    let message = TEXT[e.code];
    if (e.code === 'MISSING_CHAR') {
      // The parser notices a missing quote or bracket where the file ends; the fix is where it opened.
      const quote = /quote/i.test(e.message);
      line = openingLine(text, line, quote);
      message = quote ? 'a quoted value is not closed (a " or \' is missing at its end)' : 'a [ or { is not closed';
    }
    if (e.code === 'BAD_INDENT' && /Flow (map|sequence)/.test(e.message)) {
      line = openingLine(text, line, false);
      message = 'a { or [ is not closed on this line, or the lines after it are not indented';
    }
    if (e.code === 'DUPLICATE_KEY') {
      const key = /^\s*(?:-\s+)?["']?([^:"'#]+?)["']?\s*:/.exec(text.split('\n')[line - 1] ?? '')?.[1];
      if (key) message = `the key "${key}" appears twice in the same map`;
    }
    message ??= 'the YAML syntax is not valid here';
    const hint = ipv6Hint(text.split('\n')[line - 1] ?? '');
    if (seen.has(line)) continue; // one syntax error tends to cause more on the same line
    seen.add(line);
    out.push({ path: '', line, message: `YAML: ${message}${hint}` });
  }
  return out;
}

/** The last line up to `line` holding an opening character that is not closed on that line. */
function openingLine(text: string, line: number, quote: boolean): number {
  const all = text.split('\n');
  for (let i = Math.min(line, all.length) - 1; i >= 0; i--) {
    const l = all[i]!.replace(/#.*$/, '');
    if (quote) {
      if ((l.match(/"/g)?.length ?? 0) % 2 === 1 || (l.match(/'/g)?.length ?? 0) % 2 === 1) return i + 1;
    } else if ((l.match(/[[{]/g)?.length ?? 0) > (l.match(/[\]}]/g)?.length ?? 0)) return i + 1;
  }
  return line;
}

/** `upstream: [::1]:53` is a YAML list followed by text; the address has to be quoted. */
function ipv6Hint(lineText: string): string {
  const m = /:\s+(\[[0-9a-fA-F:.%]*:[0-9a-fA-F:.%]*\](?::\d+)?)\s*$/.exec(lineText);
  return m ? ` (an IPv6 address in brackets must be quoted: "${m[1]}")` : '';
}

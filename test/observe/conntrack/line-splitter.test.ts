import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineSplitter } from '../../../src/observe/conntrack/index.js';

function collect(max: number) {
  const lines: string[] = [];
  let overlong = 0;
  const s = new LineSplitter(max, (l) => void lines.push(l), () => void overlong++);
  return { s, lines, overlong: () => overlong };
}

test('lines split across chunks, CRLF, a last line without newline', () => {
  const c = collect(100);
  c.s.push('ab');
  c.s.push('c\nde\r\n\nf');
  c.s.push('g');
  c.s.end();
  assert.deepEqual(c.lines, ['abc', 'de', '', 'fg']);
});

test('an overlong line is dropped up to its newline and counted once; the next line is intact', () => {
  const c = collect(5);
  c.s.push('12345');
  c.s.push('678');
  c.s.push('9abc');
  c.s.push('def\nok\n');
  c.s.push('123456\nok2\n');
  assert.deepEqual(c.lines, ['ok', 'ok2']);
  assert.equal(c.overlong(), 2);
});

test('property: any chunking of a text yields the lines of the text', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: fc.constantFrom('a', 'b', '\n'), maxLength: 8 }), { maxLength: 12 }), (chunks) => {
      const c = collect(1000);
      for (const ch of chunks) c.s.push(ch);
      c.s.end();
      const text = chunks.join('');
      const want = text.split('\n');
      if (want[want.length - 1] === '') want.pop();
      assert.deepEqual(c.lines, want);
    }),
    { seed: 0x5eed, numRuns: 500 },
  );
});

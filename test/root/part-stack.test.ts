import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PartStack } from '../../src/root/part-stack.js';
import { isSluiceError } from '../../src/core/errors.js';

test('parts close newest first; stop is idempotent and a second call joins the first', async () => {
  const stack = new PartStack();
  const closed: string[] = [];
  for (const name of ['a', 'b', 'c']) await stack.start(name, () => name, (p) => void closed.push(p));
  stack.defer('d', () => void closed.push('d'));
  assert.deepEqual(stack.names, ['a', 'b', 'c', 'd']);
  const first = stack.stop();
  assert.equal(stack.stop(), first);
  await first;
  assert.deepEqual(closed, ['d', 'c', 'b', 'a']);
  assert.deepEqual(stack.names, []);
  await assert.rejects(stack.start('late', () => 1, () => {}), (err) => isSluiceError(err, 'SLUICE_ERR_CLOSED'));
});

test('each part gets a child signal: aborted at once on an immediate stop, after its own close on a graceful one', async () => {
  const stack = new PartStack();
  const seen: string[] = [];
  let release!: () => void;
  const drained = new Promise<void>((r) => (release = r));
  await stack.start(
    'drains',
    (signal) => signal,
    async (signal) => {
      // A graceful drain that only an immediate stop cuts short.
      signal.addEventListener('abort', release, { once: true });
      await drained;
      seen.push(`drains closed, aborted=${signal.aborted}`);
    },
  );
  const quick = await stack.start('quick', (signal) => signal, (signal) => void seen.push(`quick closed, aborted=${signal.aborted}`));
  const graceful = stack.stop('graceful');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ['quick closed, aborted=false']);
  assert.equal(quick.aborted, true, 'aborted once its close returned');
  const immediate = stack.stop('immediate');
  await Promise.all([graceful, immediate]);
  assert.deepEqual(seen, ['quick closed, aborted=false', 'drains closed, aborted=true']);
});

test('the parent signal aborting is an immediate stop; a failing close does not stop the walk and is thrown at the end', async () => {
  const parent = new AbortController();
  const stack = new PartStack(parent.signal);
  const closed: string[] = [];
  await stack.start('a', () => 'a', () => void closed.push('a'));
  await stack.start('b', () => 'b', () => {
    throw new Error('b failed to close');
  });
  await stack.start('c', (signal) => signal, (signal) => void closed.push(`c aborted=${signal.aborted}`));
  parent.abort();
  await assert.rejects(stack.stop(), /b failed to close/);
  assert.deepEqual(closed, ['c aborted=true', 'a']);
  assert.equal(stack.signal.aborted, true);
});

test('a part that fails to start is not pushed; the ones before it are what stop closes', async () => {
  const stack = new PartStack();
  const closed: string[] = [];
  await stack.start('a', () => 'a', () => void closed.push('a'));
  await assert.rejects(
    stack.start('b', () => Promise.reject(new Error('no')), () => void closed.push('b')),
    /no/,
  );
  await stack.stop('immediate');
  assert.deepEqual(closed, ['a']);
});

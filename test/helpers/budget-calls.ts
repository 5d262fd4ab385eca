import type { TestContext } from 'node:test';
import { SendBudget } from '../../src/upstream/agent/send-budget.js';

/**
 * Counts JavaScript's send-budget calls (SendBudget.admit) until `t` ends: a datagram the native
 * batch refuses or parks must not cost one. Returns the count so far.
 */
export function countBudgetCalls(t: TestContext): () => number {
  let calls = 0;
  const admit = SendBudget.prototype.admit;
  SendBudget.prototype.admit = function (this: SendBudget, ...args: Parameters<SendBudget['admit']>) {
    calls++;
    return admit.apply(this, args);
  };
  t.after(() => {
    SendBudget.prototype.admit = admit;
  });
  return () => calls;
}

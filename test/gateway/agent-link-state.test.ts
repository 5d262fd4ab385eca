import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../src/core/errors.js';
import { AGENT_LINK_MOVES, nextAgentLinkState, type AgentLinkState } from '../../src/gateway/agent-link-state.js';

const STATES: readonly AgentLinkState[] = ['detached', 'attached', 'closed'];
const LEGAL: ReadonlySet<string> = new Set([
  'detached>attached', // first connection authenticated, or the agent resumed within its grace
  'detached>closed', // the grace ran out, or the gateway shut down
  'attached>attached', // a newer connection of the same agent authenticated
  'attached>detached', // the control connection was lost
  'attached>closed', // superseded without resume, key exhausted, shutdown
]);

test('agent link: every legal move is allowed and every other one refused with SLUICE_ERR_STATE', () => {
  for (const from of STATES) {
    for (const to of STATES) {
      const key = `${from}>${to}`;
      if (LEGAL.has(key)) assert.equal(nextAgentLinkState(from, to), to, key);
      else assert.throws(() => nextAgentLinkState(from, to), (e) => isSluiceError(e, 'SLUICE_ERR_STATE') && e.message.includes(`${from} → ${to}`), key);
    }
  }
});

test('agent link: closed is final and the table names exactly the documented states', () => {
  assert.deepEqual(AGENT_LINK_MOVES.closed, []);
  assert.deepEqual(Object.keys(AGENT_LINK_MOVES).sort(), [...STATES].sort());
});

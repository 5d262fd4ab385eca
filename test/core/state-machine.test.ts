import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../src/core/errors.js';
import { canMove, moveState, type TransitionTable } from '../../src/core/state-machine.js';

type Door = 'open' | 'shut' | 'gone';
const DOOR: TransitionTable<Door> = { open: ['shut', 'gone'], shut: ['open', 'shut', 'gone'], gone: [] };

test('state machine: a move the table lists returns the new state; canMove agrees', () => {
  assert.equal(moveState(DOOR, 'door', 'open', 'shut'), 'shut');
  assert.equal(moveState(DOOR, 'door', 'shut', 'shut'), 'shut');
  assert.equal(canMove(DOOR, 'shut', 'open'), true);
  assert.equal(canMove(DOOR, 'open', 'open'), false);
});

test('state machine: an unlisted move throws SLUICE_ERR_STATE naming the machine and the move', () => {
  assert.throws(() => moveState(DOOR, 'door', 'gone', 'open'), (e) => isSluiceError(e, 'SLUICE_ERR_STATE') && e.message === 'door: gone → open is not a legal move');
  assert.throws(() => moveState(DOOR, 'door', 'open', 'open'), (e) => isSluiceError(e, 'SLUICE_ERR_STATE'));
});

import { describe, it, expect } from 'vitest';
import type { Decider, DomainEvent } from './envelope.js';
import { specFor } from './testing.js';

// The decider specs in this workspace assert through specFor, so specFor itself must fail loudly.
type Counted = DomainEvent<'Counted', { total: number }>;
type Count = { type: 'Count'; by: number };
const counter: Decider<number, Count, Counted> = {
  initialState: () => 0,
  decide: (command, total) => {
    if (command.by <= 0) throw new RangeError('by must be positive');
    return [{ type: 'Counted', data: { total: total + command.by } }];
  },
  evolve: (_total, event) => event.data.total,
};
const spec = specFor(counter);
const counted = (total: number): Counted => ({ type: 'Counted', data: { total } });

describe('specFor', () => {
  it('folds the given events before deciding and returns what was decided', () => {
    expect(
      spec([counted(2), counted(5)])
        .when({ type: 'Count', by: 3 })
        .then([counted(8)]),
    ).toEqual([counted(8)]);
  });

  it('then throws, printing both sides, when the decided events differ', () => {
    expect(() =>
      spec([counted(5)])
        .when({ type: 'Count', by: 3 })
        .then([counted(9)]),
    ).toThrow(
      'decided events differ\nexpected: [{"type":"Counted","data":{"total":9}}]\nactual:   [{"type":"Counted","data":{"total":8}}]',
    );
    expect(() => spec([]).when({ type: 'Count', by: 1 }).then([])).toThrow('decided events differ');
  });

  it('thenThrows passes when the command is rejected with the expected error', () => {
    expect(() =>
      spec([])
        .when({ type: 'Count', by: 0 })
        .thenThrows((e) => e instanceof RangeError),
    ).not.toThrow();
  });

  it('thenThrows throws when the command is accepted', () => {
    expect(() =>
      spec([])
        .when({ type: 'Count', by: 1 })
        .thenThrows(() => true),
    ).toThrow('expected the command to be rejected, but it was accepted');
  });

  it('thenThrows throws when the command is rejected with an unexpected error', () => {
    expect(() =>
      spec([])
        .when({ type: 'Count', by: 0 })
        .thenThrows((e) => e instanceof TypeError),
    ).toThrow('rejected with an unexpected error: RangeError: by must be positive');
  });
});

import type { Decider, DomainEvent } from './envelope.js';

/**
 * given(events).when(command).then(events) for deciders, as in Emmett's DeciderSpecification.
 * Framework-free so the domain stays free of test dependencies: `then` returns what was decided
 * and throws (with both sides printed) on a mismatch.
 */
export function specFor<S, C, E extends DomainEvent>(decider: Decider<S, C, E>) {
  return (given: E[]) => ({
    when(command: C) {
      const run = (): E[] => {
        let state = decider.initialState();
        for (const e of given) state = decider.evolve(state, e);
        return decider.decide(command, state);
      };
      return {
        then(expected: E[]): E[] {
          const actual = run();
          const a = JSON.stringify(actual);
          const b = JSON.stringify(expected);
          if (a !== b) throw new Error(`decided events differ\nexpected: ${b}\nactual:   ${a}`);
          return actual;
        },
        thenThrows(check: (error: unknown) => boolean): void {
          let thrown: unknown;
          try {
            run();
          } catch (error) {
            thrown = error;
          }
          if (thrown === undefined) throw new Error('expected the command to be rejected, but it was accepted');
          if (!check(thrown)) throw new Error(`rejected with an unexpected error: ${String(thrown)}`);
        },
      };
    },
  });
}

/**
 * The sandbox's test cards: the last three digits of the amount choose the behaviour,
 * so a test (or a demo) picks an outcome by picking an amount.
 */
export type SandboxRule = 'authorize' | 'decline' | 'unavailable' | 'fail' | 'slow';

/**
 * @param attemptOfRequest 1 for the first distinct idempotency key seen for the request,
 *   2 for the second, …; `…503` fails the first two, so a request succeeds on its third attempt.
 */
export function sandboxRuleFor(amount: number, attemptOfRequest: number): SandboxRule {
  switch (String(amount).slice(-3)) {
    case '402':
      return 'decline';
    case '503':
      return attemptOfRequest <= 2 ? 'unavailable' : 'authorize';
    case '500':
      return 'fail';
    case '408':
      return 'slow';
    default:
      return 'authorize';
  }
}

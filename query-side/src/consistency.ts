import type { QueryContext, QueryDeps } from './context.js';
import { badUserInput } from './errors.js';

const DIGITS = /^\d{1,16}$/;

/** A global log position given as a decimal string; BAD_USER_INPUT naming `field` otherwise. */
export function parsePosition(raw: string, field: string): number {
  const n = DIGITS.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n))
    throw badUserInput(field, `${field} must be a global position (a non-negative integer as a string)`);
  return n;
}

/**
 * Read-your-writes: waits (at most `readWaitMs`) until the read models include `position`. A
 * timeout does not fail the query: it answers what is there and marks the response stale.
 */
export async function waitForPosition(deps: QueryDeps, position: number): Promise<boolean> {
  if (position <= deps.projector.currentPosition) return true;
  return deps.projector.waitFor(position, deps.readWaitMs);
}

/** The `minPosition` argument of a query field. */
export async function readYourWrites(
  deps: QueryDeps,
  ctx: QueryContext,
  minPosition: string | null | undefined,
): Promise<void> {
  if (minPosition == null) return;
  if (!(await waitForPosition(deps, parsePosition(minPosition, 'minPosition')))) ctx.stale = true;
}

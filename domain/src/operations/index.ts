import type { DomainEvent } from '../envelope.js';

/**
 * Operator actions are events too (audit): every rebuild, cutover, rollback, parked-stream retry
 * or skip, dead-letter re-drive or drop and archive run is appended to the `operator-audit`
 * stream, with the operator's client id as the event's `actor`. Nothing reads them to decide
 * anything; they are the record of who did what, and when.
 */
export const OPERATOR_AUDIT_STREAM = 'operator-audit';

export const OPERATOR_ACTIONS = [
  'ProjectionRebuildStarted',
  'ProjectionCutOver',
  'ProjectionRolledBack',
  'ParkedStreamRetried',
  'ParkedStreamSkipped',
  'DeadLetterRetried',
  'DeadLetterSkipped',
  'ArchiveRun',
  'ArchiveImported',
] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

export type OperatorActionRecorded = DomainEvent<
  'OperatorActionRecorded',
  {
    action: OperatorAction;
    /** What the action was about: a projection name, a stream id, a topic/offset, an archive file. */
    target: string;
    /** Action-specific facts (versions, positions, counts, the error that was skipped…). */
    detail: Record<string, unknown>;
    at: string;
  }
>;

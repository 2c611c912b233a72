import { readOperatorActions, recordOperatorAction, type DeadLetter, type EventStore } from '@settle/platform';
import { requireOperator } from '../auth.js';
import type { QueryContext, QueryDeps } from '../context.js';
import { badUserInput, GQL_NOT_FOUND, QueryError } from '../errors.js';

/** `<topic>/<partition>/<offset>`: how operators name a dead letter. */
export const deadLetterId = (l: Pick<DeadLetter, 'topic' | 'partition' | 'offset'>): string =>
  `${l.topic}/${l.partition}/${l.offset}`;

const ID = /^[A-Za-z0-9._-]{1,249}\/\d{1,6}\/\d{1,20}$/;

/**
 * Dead letters an operator already retried or skipped: the audit trail is the acknowledgement
 * (Kafka cannot delete one message; it stays in the topic until retention removes it).
 */
async function handled(store: EventStore): Promise<Set<string>> {
  const done = new Set<string>();
  for (const e of await readOperatorActions(store))
    if (e.data.action === 'DeadLetterRetried' || e.data.action === 'DeadLetterSkipped') done.add(e.data.target);
  return done;
}

function view(l: DeadLetter) {
  return {
    id: deadLetterId(l),
    topic: l.topic,
    partition: l.partition,
    offset: l.offset,
    key: l.key,
    group: l.group,
    attempts: l.attempts,
    error: l.error,
    errorCode: l.errorCode,
    failedAt: l.failedAt,
    originalTopic: l.originalTopic,
    originalPartition: l.originalPartition,
    originalOffset: l.originalOffset,
    eventType: l.event?.type ?? null,
    streamId: l.event?.streamId ?? null,
    position: l.event ? String(l.event.globalPosition) : null,
  };
}

async function pending(deps: QueryDeps): Promise<DeadLetter[]> {
  if (!deps.deadLetters) return [];
  const [letters, done] = await Promise.all([deps.deadLetters.list(), handled(deps.eventStore)]);
  return letters.filter((l) => !done.has(deadLetterId(l)));
}

export function deadLetterQueries(deps: QueryDeps) {
  return {
    /** Kafka `<topic>.dlq` messages not yet retried or skipped; empty on the embedded bus (it parks streams instead). */
    async deadLetters(_: unknown, _args: unknown, ctx: QueryContext) {
      requireOperator(ctx.principal);
      return (await pending(deps)).map(view);
    },
  };
}

export function deadLetterMutations(deps: QueryDeps) {
  const act =
    (action: 'retry' | 'skip') =>
    async (_: unknown, args: { id?: unknown }, ctx: QueryContext): Promise<boolean> => {
      requireOperator(ctx.principal);
      const id = typeof args.id === 'string' ? args.id.trim() : '';
      if (!ID.test(id))
        throw badUserInput('id', 'id must be <topic>/<partition>/<offset>, e.g. settle.request.dlq/0/12');
      if (!deps.deadLetters)
        throw new QueryError(
          GQL_NOT_FOUND,
          'no Kafka bus is configured: the embedded bus has no dead letters (it parks streams; see parkedStreams)',
          { field: 'id' },
        );
      const letter = (await pending(deps)).find((l) => deadLetterId(l) === id);
      if (!letter)
        throw new QueryError(GQL_NOT_FOUND, `no dead letter ${id} waiting (already retried or skipped?)`, {
          field: 'id',
        });
      // Re-driven first, then recorded: a failure in between lists it again rather than losing it.
      if (action === 'retry') await deps.deadLetters.replay(letter);
      await recordOperatorAction(deps.eventStore, {
        action: action === 'retry' ? 'DeadLetterRetried' : 'DeadLetterSkipped',
        target: id,
        actor: ctx.principal.clientId,
        detail: {
          group: letter.group,
          key: letter.key,
          originalTopic: letter.originalTopic,
          originalPartition: letter.originalPartition,
          originalOffset: letter.originalOffset,
          error: letter.error,
          ...(letter.event ? { eventId: letter.event.id, eventType: letter.event.type } : {}),
        },
      });
      return true;
    };
  return { retryDeadLetter: act('retry'), skipDeadLetter: act('skip') };
}

import { BusParking, EventStoreBus, KafkaBus } from '@settle/platform';
import { ProjectorParking } from '@settle/projections';
import type { QueryDeps } from '@settle/query-side';
import type { PlatformParts } from './wiring.js';

/** Stream categories the reactors consume, hence the `<topic>.dlq` topics there can be. */
const CONSUMED_CATEGORIES = ['request-'];
/** The reactor groups `start.ts` consumes with: their parked streams on the embedded bus. */
export const REACTOR_GROUPS = ['dispatcher', 'notifier'];

/**
 * What the operator API reaches for parked streams and dead letters: the projector's parked
 * records (read store); the reactor groups' parked streams on the embedded bus (event store), or,
 * on Kafka, the `<topic>.dlq` topics of the categories reactors consume.
 */
export function operatorParts(parts: PlatformParts): Pick<QueryDeps, 'parking' | 'deadLetters'> {
  const bus = parts.bus;
  return {
    parking: [
      new ProjectorParking(parts.readStore),
      ...(bus instanceof EventStoreBus ? [new BusParking(parts.eventStore, REACTOR_GROUPS)] : []),
    ],
    ...(bus instanceof KafkaBus
      ? {
          deadLetters: {
            list: async () => (await Promise.all(CONSUMED_CATEGORIES.map((c) => bus.readDeadLetters(c)))).flat(),
            replay: (letter) => bus.replayDeadLetter(letter),
          },
        }
      : {}),
  };
}

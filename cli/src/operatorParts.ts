import { KafkaBus } from '@settle/platform';
import { ProjectorParking } from '@settle/projections';
import type { QueryDeps } from '@settle/query-side';
import type { PlatformParts } from './wiring.js';

/** Stream categories the reactors consume, hence the `<topic>.dlq` topics there can be. */
const CONSUMED_CATEGORIES = ['request-'];

/**
 * What the operator API reaches for parked streams and dead letters: the projector's parked
 * records (read store), and, on Kafka, the `<topic>.dlq` topics of the categories reactors consume.
 */
export function operatorParts(parts: PlatformParts): Pick<QueryDeps, 'parking' | 'deadLetters'> {
  const bus = parts.bus;
  return {
    parking: [new ProjectorParking(parts.readStore)],
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

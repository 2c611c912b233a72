import type { Projection } from './projection.js';
import { REQUESTS, type RequestDoc } from './requests.js';

/**
 * Development only (`SETTLE_DEV_POISON_REFERENCE`): the `requests` projection throws on
 * `PaymentAuthorized` of requests whose reference starts with `prefix`, so an operator can watch a
 * stream park while the others flow, and try `settle dlq skip`. The other projections are left as they are.
 */
export function withPoisonReference(projections: Projection[], prefix: string): Projection[] {
  if (!prefix) return projections;
  return projections.map((p) =>
    p.name !== 'requests'
      ? p
      : {
          ...p,
          async apply(event, uow) {
            if (event.type === 'PaymentAuthorized') {
              const doc = await uow.get<RequestDoc>(REQUESTS, event.streamId.slice('request-'.length));
              if (doc?.reference.startsWith(prefix))
                throw new Error(
                  `poison reference ${doc.reference} (SETTLE_DEV_POISON_REFERENCE): cannot fold ${event.type}`,
                );
            }
            await p.apply(event, uow);
          },
        },
  );
}

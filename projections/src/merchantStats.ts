import type { PaymentRequestEvent, StoredEvent } from '@settle/domain';
import type { ReadDoc } from '@settle/platform';
import type { Projection } from './projection.js';
import type { UnitOfWork } from './unitOfWork.js';

export const MERCHANT_STATS = 'merchant_stats';
/** The projection's own index of requests, so later events can be attributed to a merchant and day. */
export const MERCHANT_STATS_REQUESTS = 'merchant_stats_requests';

export type Outcome = 'settled' | 'declined' | 'failed' | 'cancelled';

export interface MerchantDayDoc extends ReadDoc {
  merchantId: string;
  /** UTC day of registration, YYYY-MM-DD. */
  day: string;
  registered: number;
  settled: number;
  declined: number;
  failed: number;
  cancelled: number;
  registeredAmounts: Record<string, number>;
  settledAmounts: Record<string, number>;
}

interface RequestIndexDoc extends ReadDoc {
  merchantId: string;
  day: string;
  amount: number;
  currency: string;
  outcome?: Outcome;
}

const OUTCOME_OF: Partial<Record<PaymentRequestEvent['type'], Outcome>> = {
  PaymentSettled: 'settled',
  PaymentDeclined: 'declined',
  PaymentFailed: 'failed',
  RequestCancelled: 'cancelled',
};

const requestIdOf = (e: StoredEvent): string => e.streamId.slice('request-'.length);

const emptyDay = (merchantId: string, day: string): Omit<MerchantDayDoc, '_id' | '_position'> => ({
  merchantId,
  day,
  registered: 0,
  settled: 0,
  declined: 0,
  failed: 0,
  cancelled: 0,
  registeredAmounts: {},
  settledAmounts: {},
});

/**
 * An archived request leaves the statistics: they describe the requests the event store still
 * holds, so the live view and a rebuild from the log (which meets only the tombstone) agree.
 * The request's counts and amounts come off its day; a day left with no request goes.
 * Replays are harmless: the day document's position guard refuses a second subtraction, and the
 * index entry, removed last, is what marks the request as counted.
 */
async function forgetArchived(stored: StoredEvent, requestId: string, uow: UnitOfWork): Promise<void> {
  const req = await uow.get<RequestIndexDoc>(MERCHANT_STATS_REQUESTS, requestId);
  if (!req) return;
  const dayId = `${req.merchantId}|${req.day}`;
  const day = await uow.update<MerchantDayDoc>(MERCHANT_STATS, dayId, stored, (doc) => {
    if (!doc) return null;
    const next = {
      ...doc,
      registered: Math.max(0, doc.registered - 1),
      registeredAmounts: minus(doc.registeredAmounts, req.currency, req.amount),
    };
    if (req.outcome) next[req.outcome] = Math.max(0, doc[req.outcome] - 1);
    if (req.outcome === 'settled') next.settledAmounts = minus(doc.settledAmounts, req.currency, req.amount);
    return next;
  });
  if (day?._position === stored.globalPosition && day.registered === 0) uow.remove(MERCHANT_STATS, dayId);
  uow.remove(MERCHANT_STATS_REQUESTS, requestId);
}

function minus(amounts: Record<string, number>, currency: string, amount: number): Record<string, number> {
  const { [currency]: current = 0, ...rest } = amounts;
  return current - amount > 0 ? { ...rest, [currency]: current - amount } : rest;
}

/** `merchantStats`: per merchant and day of registration, counts by outcome and amounts by currency. */
export const merchantStatsProjection: Projection = {
  name: 'merchantStats',
  collections: {
    [MERCHANT_STATS]: [
      {
        fields: [
          ['merchantId', 1],
          ['day', 1],
        ],
      },
    ],
    [MERCHANT_STATS_REQUESTS]: [],
  },
  streamPrefixes: ['request-'],
  async prefetch(events, uow) {
    // Indexed at the stream's first event (RequestRegistered): none to read before that.
    uow.absent(MERCHANT_STATS_REQUESTS, events.filter((e) => e.streamPosition === 0).map(requestIdOf));
    await uow.prefetch(MERCHANT_STATS_REQUESTS, events.map(requestIdOf));
  },
  async apply(stored, uow) {
    const event = stored as unknown as PaymentRequestEvent & StoredEvent;
    const requestId = requestIdOf(stored);
    if (event.type === 'RequestRegistered') {
      const d = event.data;
      const day = stored.occurredAt.slice(0, 10);
      const indexed = await uow.update<RequestIndexDoc>(MERCHANT_STATS_REQUESTS, requestId, stored, () => ({
        _id: requestId,
        merchantId: d.merchantId,
        day,
        amount: d.amount,
        currency: d.currency,
      }));
      if (indexed?._position !== stored.globalPosition) return;
      await uow.update<MerchantDayDoc>(MERCHANT_STATS, `${d.merchantId}|${day}`, stored, (doc) => {
        const base = doc ?? { _id: `${d.merchantId}|${day}`, ...emptyDay(d.merchantId, day) };
        return {
          ...base,
          registered: base.registered + 1,
          registeredAmounts: {
            ...base.registeredAmounts,
            [d.currency]: (base.registeredAmounts[d.currency] ?? 0) + d.amount,
          },
        };
      });
      return;
    }
    if (event.type === 'RequestArchived') return forgetArchived(stored, requestId, uow);
    const outcome = OUTCOME_OF[event.type];
    if (!outcome) return;
    const req = await uow.get<RequestIndexDoc>(MERCHANT_STATS_REQUESTS, requestId);
    // An outcome recorded by an earlier event wins; one recorded by this very event means a replay
    // after a crash between the two writes, and the day document's own guard decides.
    if (!req || (req.outcome && req._position !== stored.globalPosition)) return;
    const marked = await uow.update<RequestIndexDoc>(MERCHANT_STATS_REQUESTS, requestId, stored, (doc) =>
      doc ? { ...doc, outcome } : null,
    );
    if (marked?._position !== stored.globalPosition) return;
    await uow.update<MerchantDayDoc>(MERCHANT_STATS, `${req.merchantId}|${req.day}`, stored, (doc) => {
      const base = doc ?? { _id: `${req.merchantId}|${req.day}`, ...emptyDay(req.merchantId, req.day) };
      const next = { ...base, [outcome]: base[outcome] + 1 };
      if (outcome === 'settled')
        next.settledAmounts = {
          ...base.settledAmounts,
          [req.currency]: (base.settledAmounts[req.currency] ?? 0) + req.amount,
        };
      return next;
    });
  },
};

import type { Filter } from '@settle/platform';
import { MERCHANT_STATS, type MerchantDayDoc } from '@settle/projections';
import { merchantScope } from '../auth.js';
import { readYourWrites } from '../consistency.js';
import type { QueryContext, QueryDeps } from '../context.js';

const COUNTERS = ['registered', 'settled', 'declined', 'failed', 'cancelled'] as const;

/** Sums currency maps exactly: a merchant's totals can pass 2^53 minor units. */
function addAmounts(total: Map<string, bigint>, amounts: Record<string, number>): void {
  for (const [currency, amount] of Object.entries(amounts))
    total.set(currency, (total.get(currency) ?? 0n) + BigInt(amount));
}

const toList = (total: Map<string, bigint>) =>
  [...total.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([currency, amount]) => ({ currency, amount: String(amount) }));

export function merchantStatsQueries(deps: QueryDeps) {
  return {
    /** Sums the per-day documents of the UTC days from `from` to `to`, both inclusive. */
    async merchantStats(
      _: unknown,
      args: { merchantId?: string | null; from?: string | null; to?: string | null; minPosition?: string | null },
      ctx: QueryContext,
    ) {
      const merchantId = merchantScope(ctx.principal, args.merchantId);
      await readYourWrites(deps, ctx, args.minPosition);
      const filter: Filter = {};
      if (merchantId !== undefined) filter.merchantId = merchantId;
      if (args.from != null || args.to != null)
        filter.day = {
          ...(args.from != null ? { $gte: args.from.slice(0, 10) } : {}),
          ...(args.to != null ? { $lte: args.to.slice(0, 10) } : {}),
        };
      const days = await deps.readStore.collection<MerchantDayDoc>(MERCHANT_STATS).find({ filter });
      const counts = { registered: 0, settled: 0, declined: 0, failed: 0, cancelled: 0 };
      const registeredAmounts = new Map<string, bigint>();
      const settledAmounts = new Map<string, bigint>();
      for (const day of days) {
        for (const c of COUNTERS) counts[c] += day[c];
        addAmounts(registeredAmounts, day.registeredAmounts);
        addAmounts(settledAmounts, day.settledAmounts);
      }
      return {
        merchantId: merchantId ?? null,
        from: args.from ?? null,
        to: args.to ?? null,
        ...counts,
        inFlight: counts.registered - counts.settled - counts.declined - counts.failed - counts.cancelled,
        registeredAmounts: toList(registeredAmounts),
        settledAmounts: toList(settledAmounts),
      };
    },
  };
}

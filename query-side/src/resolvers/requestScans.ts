import type { RequestStatus } from '@settle/domain';
import type { Filter, ReadCollection } from '@settle/platform';
import { MERCHANT_STATS, REQUEST_SEQ_PAGE, seqPageOf, type MerchantDayDoc, type RequestDoc } from '@settle/projections';
import type { QueryDeps } from '../context.js';

/*
 * Reads of the `requests` list for a read store that sorts and counts by decoding every candidate
 * document (FerretDB 1.x: `readStore.scansForSorts`). There, "the newest 20" or a `totalCount`
 * over 17k requests took 4 s on an idle machine and a minute during a rebuild. Equality conditions
 * are handed to its backend, so the newest requests are taken a `seqPage` at a time, and counts
 * come from the counters `merchantStats` maintains. Stores with indexes use the plain queries.
 */

/** Pages asked for at once, and pages walked before a plain sorted query takes the rest. */
const PARALLEL_PAGES = 4;
const MAX_WALKED_PAGES = 16;

/**
 * The newest `limit` requests matching `filter` with `seq` below `before` (when given), newest
 * first: the same answer as `find({ filter, sort: [['seq', -1]], limit })`, read one `seqPage`
 * at a time from `top` (the highest `seq` there can be) down. A filter that matches few requests
 * stops walking after MAX_WALKED_PAGES pages and sorts the remainder in one query.
 */
export async function newestByPages(
  collection: ReadCollection<RequestDoc>,
  filter: Filter,
  limit: number,
  top: number,
  before?: number,
): Promise<RequestDoc[]> {
  const below = before ?? Number.POSITIVE_INFINITY;
  const highest = Math.min(top, below - 1);
  if (highest < 0) return [];
  const found: RequestDoc[] = [];
  let page = seqPageOf(highest);
  const lastWalked = Math.max(0, page - MAX_WALKED_PAGES + 1);
  const pageFilter: Filter = before === undefined ? filter : { ...filter, seq: { $lt: before } };
  while (page >= lastWalked) {
    const pages: number[] = [];
    for (let p = page; p >= lastWalked && pages.length < PARALLEL_PAGES; p--) pages.push(p);
    const results = await Promise.all(pages.map((p) => collection.find({ filter: { ...pageFilter, seqPage: p } })));
    for (const docs of results) found.push(...docs.sort((a, b) => b.seq - a.seq));
    if (found.length >= limit) return found.slice(0, limit);
    page -= pages.length;
  }
  if (lastWalked === 0) return found;
  const rest = await collection.find({
    filter: { ...filter, seq: { $lt: Math.min(below, lastWalked * REQUEST_SEQ_PAGE) } },
    sort: [['seq', -1]],
    limit: limit - found.length,
  });
  return [...found, ...rest];
}

const IN_FLIGHT: readonly RequestStatus[] = ['REGISTERED', 'AUTHORIZING', 'AUTHORIZED'];
/** The terminal statuses and the `merchantStats` outcome counter of each. */
const OUTCOMES: readonly [RequestStatus, 'settled' | 'declined' | 'failed' | 'cancelled'][] = [
  ['SETTLED', 'settled'],
  ['DECLINED', 'declined'],
  ['FAILED', 'failed'],
  ['CANCELLED', 'cancelled'],
];

/**
 * How many requests of `merchantId` (every merchant when undefined) have one of `statuses` (any
 * when undefined), from the `merchantStats` counters: registered requests the event store still
 * holds, and each one's outcome. Undefined when the counters cannot say (some but not all of the
 * in-flight statuses, where they keep only the sum).
 */
export async function countFromStats(
  deps: Pick<QueryDeps, 'readStore'>,
  merchantId: string | undefined,
  statuses: readonly RequestStatus[] | undefined,
): Promise<number | undefined> {
  const wanted = statuses && new Set(statuses);
  const inFlight = wanted ? IN_FLIGHT.filter((s) => wanted.has(s)).length : IN_FLIGHT.length;
  if (inFlight !== 0 && inFlight !== IN_FLIGHT.length) return undefined;
  if (wanted && wanted.size === 0) return 0;
  const days = await deps.readStore
    .collection<MerchantDayDoc>(MERCHANT_STATS)
    .find({ filter: merchantId !== undefined ? { merchantId } : {} });
  let total = 0;
  for (const day of days) {
    if (!wanted) {
      total += day.registered;
      continue;
    }
    let terminal = 0;
    for (const [status, counter] of OUTCOMES) {
      const n = day[counter];
      terminal += n;
      if (wanted.has(status)) total += n;
    }
    if (inFlight !== 0) total += day.registered - terminal;
  }
  return total;
}

import type { RequestStatus } from '@settle/domain';
import type { Filter } from '@settle/platform';
import { REQUESTS, type RequestDoc } from '@settle/projections';
import { canSee, merchantScope } from '../auth.js';
import { readYourWrites } from '../consistency.js';
import type { QueryContext, QueryDeps } from '../context.js';
import { badUserInput } from '../errors.js';
import { toRequestView, type RequestView } from './requestView.js';
import { countFromStats, newestByPages } from './requestScans.js';
import { requestAsOf } from './timeTravel.js';

const CACHE_TTL_MS = 30_000;
const MAX_PAGE = 100;

export const requestCacheKey = (id: string): string => `request:${id}`;

interface RequestFilterInput {
  status?: RequestStatus[] | null;
  merchantId?: string | null;
  from?: string | null;
  to?: string | null;
}

/** Cursor: the registration's global position (`seq`), opaque to clients. */
export const encodeCursor = (seq: number): string => Buffer.from(String(seq)).toString('base64url');

export function decodeCursor(cursor: string): number {
  const raw = Buffer.from(cursor, 'base64url').toString();
  const seq = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(seq) || encodeCursor(seq) !== cursor)
    throw badUserInput('after', 'after is not a cursor this API returned');
  return seq;
}

/**
 * Cache-aside read by id. The projector drops `request:<id>` after it writes; a read that raced
 * with that write could put the old document back for a whole TTL, so a value read while the
 * projector moved on is dropped again (the projector updates its position before it invalidates).
 */
async function loadRequest(deps: QueryDeps, id: string): Promise<RequestDoc | null> {
  const key = requestCacheKey(id);
  const hit = await deps.cache.get<RequestDoc>(key);
  if (hit) return hit;
  const before = deps.projector.currentPosition;
  const doc = await deps.readStore.collection<RequestDoc>(REQUESTS).get(id);
  if (!doc) return null;
  await deps.cache.set(key, doc, CACHE_TTL_MS);
  if (deps.projector.currentPosition !== before) await deps.cache.delete([key]);
  return doc;
}

export function buildRequestFilter(ctx: QueryContext, input: RequestFilterInput | null | undefined): Filter {
  const filter: Filter = {};
  const merchantId = merchantScope(ctx.principal, input?.merchantId);
  if (merchantId !== undefined) filter.merchantId = merchantId;
  // An empty list means "none of these statuses", as MongoDB's $in does.
  if (input?.status != null) filter.status = { $in: input.status };
  if (input?.from != null || input?.to != null)
    filter.createdAt = {
      ...(input.from != null ? { $gte: input.from } : {}),
      ...(input.to != null ? { $lte: input.to } : {}),
    };
  return filter;
}

export function requestQueries(deps: QueryDeps) {
  return {
    async request(
      _: unknown,
      args: { id: string; asOf?: string | null; minPosition?: string | null },
      ctx: QueryContext,
    ): Promise<RequestView | null> {
      merchantScope(ctx.principal); // FORBIDDEN for principals that may read no request at all
      let doc: RequestDoc | null;
      if (args.asOf != null) doc = await requestAsOf(deps.eventStore, args.id, args.asOf);
      else {
        await readYourWrites(deps, ctx, args.minPosition);
        doc = await loadRequest(deps, args.id);
      }
      // Another merchant's request is reported as absent: an error would confirm that it exists.
      return doc && canSee(ctx.principal, doc) ? toRequestView(doc) : null;
    },

    async requests(
      _: unknown,
      args: {
        filter?: RequestFilterInput | null;
        first?: number | null;
        after?: string | null;
        minPosition?: string | null;
      },
      ctx: QueryContext,
    ) {
      const first = args.first ?? 20;
      if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE)
        throw badUserInput('first', `first must be from 1 to ${MAX_PAGE}`);
      const filter = buildRequestFilter(ctx, args.filter);
      const before = args.after != null ? decodeCursor(args.after) : undefined;
      await readYourWrites(deps, ctx, args.minPosition);
      const collection = deps.readStore.collection<RequestDoc>(REQUESTS);
      const scans = deps.readStore.scansForSorts === true;
      // Each part is read only when the query selects it: a `totalCount` alone lists nothing.
      const once = <T>(load: () => Promise<T>): (() => Promise<T>) => {
        let loaded: Promise<T> | undefined;
        return () => (loaded ??= load());
      };
      const page = once(async () => {
        const docs = scans
          ? await newestByPages(collection, filter, first + 1, await deps.eventStore.headPosition(), before)
          : await collection.find({
              filter: before !== undefined ? { ...filter, seq: { $lt: before } } : filter,
              sort: [['seq', -1]],
              limit: first + 1,
            });
        const edges = docs.slice(0, first).map((doc) => ({ cursor: encodeCursor(doc.seq), node: toRequestView(doc) }));
        return { edges, hasNextPage: docs.length > first };
      });
      const totalCount = once(async () => {
        const fromCounters =
          scans && args.filter?.from == null && args.filter?.to == null
            ? await countFromStats(
                deps,
                merchantScope(ctx.principal, args.filter?.merchantId),
                args.filter?.status ?? undefined,
              )
            : undefined;
        return fromCounters ?? collection.count(filter);
      });
      return {
        edges: async () => (await page()).edges,
        nodes: async () => (await page()).edges.map((e) => e.node),
        pageInfo: async () => {
          const { edges, hasNextPage } = await page();
          return { hasNextPage, endCursor: edges.at(-1)?.cursor ?? null };
        },
        totalCount,
      };
    },
  };
}

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuplicateKeyError } from '../readStore/errors.js';
import type { Filter, ReadCollection, ReadDoc, ReadStore } from '../readStore/port.js';

interface Doc extends ReadDoc {
  [field: string]: unknown;
}

/**
 * Documents whose field `f` holds every kind of value a filter must tell apart (numbers, strings,
 * booleans, null, missing, an array), so each operator's MongoDB meaning is pinned down.
 */
const MIXED: { _id: string; [field: string]: unknown }[] = [
  { _id: '1', f: 1, s: 'a', b: true },
  { _id: '2', f: 'x', s: 'b', b: false },
  { _id: '3', f: null, s: 'c' },
  { _id: '4', s: 'd' },
  { _id: '5', f: 5.5, n: { x: 1 } },
  { _id: '6', f: [1, 7], s: 'z' },
  { _id: '7', f: true },
  { _id: '8', f: 3 },
  { _id: '9', f: '', n: { x: null } },
];

/** Filter → ids it matches, as MongoDB answers (checked against FerretDB 1.24). */
const FILTER_CASES: [string, Filter, string][] = [
  ['equality (an array matches if an element does)', { f: 1 }, '1,6'],
  ['equality with null matches null and missing', { f: null }, '3,4'],
  ['equality with a string', { f: 'x' }, '2'],
  ['equality with a boolean', { b: false }, '2'],
  ['$ne (missing fields match; arrays match only if no element equals)', { f: { $ne: 1 } }, '2,3,4,5,7,8,9'],
  ['$ne null matches fields that exist and are not null', { f: { $ne: null } }, '1,2,5,6,7,8,9'],
  ['$ne true on a sparse field', { b: { $ne: true } }, '2,3,4,5,6,7,8,9'],
  ['$in over mixed types', { f: { $in: [1, 'x'] } }, '1,2,6'],
  ['$in with null matches missing too', { f: { $in: [null] } }, '3,4'],
  ['$in with an empty list matches nothing', { f: { $in: [] } }, ''],
  ['$in on _id', { _id: { $in: ['1', '3', 'nope'] } }, '1,3'],
  ['$gt only compares numbers with numbers', { f: { $gt: 2 } }, '5,6,8'],
  ['$gte on a number', { f: { $gte: 3 } }, '5,6,8'],
  ['$lt on a number', { f: { $lt: 3 } }, '1,6'],
  ['$lte on a number', { f: { $lte: 1 } }, '1,6'],
  ['$gt only compares strings with strings', { f: { $gt: 'a' } }, '2'],
  ['$gte with the empty string', { f: { $gte: '' } }, '2,9'],
  ['$gt false only matches booleans', { f: { $gt: false } }, '7'],
  ['$gte null is equality with null', { f: { $gte: null } }, '3,4'],
  ['$lte null is equality with null', { f: { $lte: null } }, '3,4'],
  ['$gt null matches nothing', { f: { $gt: null } }, ''],
  ['a range on a scalar field', { s: { $gte: 'b', $lt: 'd' } }, '2,3'],
  ['a range on an array: each bound may be met by a different element', { f: { $gt: 6, $lt: 2 } }, '6'],
  ['a range with $ne', { f: { $lt: 100, $ne: 1 } }, '5,8'],
  ['$exists true (null exists)', { f: { $exists: true } }, '1,2,3,5,6,7,8,9'],
  ['$exists false', { f: { $exists: false } }, '4'],
  ['$exists false with $ne', { f: { $exists: false, $ne: 1 } }, '4'],
  ['a dotted path', { 'n.x': 1 }, '5'],
  ['a dotted path equal to null (missing parents match)', { 'n.x': null }, '1,2,3,4,6,7,8,9'],
  ['$exists on a dotted path', { 'n.x': { $exists: true } }, '5,9'],
  ['a conjunction of fields', { s: { $exists: true }, f: { $gt: 0 } }, '1,6'],
];

export interface ReadStoreContractOptions {
  /** Runs before the store is closed (e.g. drop the throwaway database). */
  teardown?: (store: ReadStore) => Promise<void>;
}

/**
 * One contract for every ReadStore adapter (embedded and real servers). `factory` returns a
 * store on a fresh, empty database; each test works in collections of its own.
 */
export function describeReadStoreContract(
  name: string,
  factory: () => Promise<ReadStore>,
  opts: ReadStoreContractOptions = {},
): void {
  describe(`ReadStore contract: ${name}`, () => {
    let store: ReadStore;
    beforeAll(async () => {
      store = await factory();
    });
    afterAll(async () => {
      if (!store) return;
      try {
        await opts.teardown?.(store);
      } finally {
        await store.close();
      }
    });
    const fresh = (): ReadCollection<Doc> => store.collection<Doc>(`c_${randomUUID().replaceAll('-', '')}`);
    const ids = (docs: ReadDoc[]) => docs.map((d) => d._id).join(',');

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('stores documents as they are and reads them back', async () => {
      const c = fresh();
      const doc: Doc = {
        _id: 'req-1',
        _position: 7,
        amount: 1250,
        big: 2 ** 40,
        ratio: 0.25,
        currency: 'EUR',
        settled: false,
        description: null,
        label: 'zahlung — 支付 😀',
        metadata: { orderId: 'o-1', nested: { deep: [1, 'two', { three: 3 }] } },
        events: [
          { type: 'RequestRegistered', position: 3 },
          { type: 'PaymentAuthorized', position: 7 },
        ],
      };
      await c.putMany([doc]);
      expect(await c.get('req-1')).toEqual(doc);
      expect(await c.get('nope')).toBeNull();
    });

    it('returns copies: changing a read document does not change the store', async () => {
      const c = fresh();
      await c.putMany([{ _id: 'a', _position: 1, tags: ['x'] }]);
      const read = (await c.get('a'))!;
      (read.tags as string[]).push('y');
      read.extra = true;
      expect(await c.get('a')).toEqual({ _id: 'a', _position: 1, tags: ['x'] });
    });

    it('leaves out fields set to undefined', async () => {
      const c = fresh();
      await c.putMany([{ _id: 'a', _position: 1, kept: 1, gone: undefined }]);
      expect(await c.count({ gone: { $exists: false } })).toBe(1);
      expect(await c.get('a')).toEqual({ _id: 'a', _position: 1, kept: 1 });
    });

    it('replaces the whole document with a newer position', async () => {
      const c = fresh();
      await c.putMany([{ _id: 'a', _position: 1, status: 'REGISTERED', attempt: 1 }]);
      await c.putMany([{ _id: 'a', _position: 2, status: 'AUTHORIZED' }]);
      expect(await c.get('a')).toEqual({ _id: 'a', _position: 2, status: 'AUTHORIZED' });
    });

    it('ignores a write older than or as old as the stored document', async () => {
      const c = fresh();
      await c.putMany([{ _id: 'a', _position: 5, v: 'five' }]);
      await c.putMany([{ _id: 'a', _position: 3, v: 'three' }]);
      await c.putMany([{ _id: 'a', _position: 5, v: 'five again' }]);
      expect(await c.get('a')).toEqual({ _id: 'a', _position: 5, v: 'five' });
    });

    it('replays a batch without changing anything', async () => {
      const c = fresh();
      const batch = Array.from({ length: 30 }, (_, i) => ({ _id: `d${i}`, _position: 100 + i, i }));
      await c.putMany(batch);
      await c.putMany(batch);
      await c.putMany(batch.slice(10, 20));
      expect(await c.count()).toBe(30);
      expect(await c.find({ sort: [['i', 1]] })).toEqual(batch);
    });

    it('applies the newer documents of a mixed batch and ignores the older ones', async () => {
      const c = fresh();
      await c.putMany([
        { _id: 'a', _position: 5, v: 'a5' },
        { _id: 'b', _position: 5, v: 'b5' },
        { _id: 'c', _position: 5, v: 'c5' },
      ]);
      // Older writes first: an adapter must not stop at the first ignored write.
      await c.putMany([
        { _id: 'a', _position: 3, v: 'a3' },
        { _id: 'c', _position: 4, v: 'c4' },
        { _id: 'b', _position: 9, v: 'b9' },
        { _id: 'd', _position: 1, v: 'd1' },
      ]);
      expect(ids(await c.find({ sort: [['_id', 1]] }))).toBe('a,b,c,d');
      expect((await c.find({ sort: [['_id', 1]] })).map((d) => d.v)).toEqual(['a5', 'b9', 'c5', 'd1']);
    });

    it('keeps the newest of several versions of one document in a batch', async () => {
      const c = fresh();
      await c.putMany([
        { _id: 'a', _position: 2, v: 2 },
        { _id: 'a', _position: 4, v: 4 },
        { _id: 'a', _position: 3, v: 3 },
      ]);
      expect(await c.get('a')).toEqual({ _id: 'a', _position: 4, v: 4 });
    });

    it('trusts no stale stored copy the writer passes along: the write lands as if none were given', async () => {
      const c = fresh();
      await c.putMany([
        { _id: 'changed', _position: 1, old: true },
        { _id: 'appeared', _position: 1, old: true },
        { _id: 'gone', _position: 1, old: true },
        { _id: 'same', _position: 1, old: true },
      ]);
      // What the writer read before folding...
      const seen = new Map<string, Doc | null>(await c.getMany(['changed', 'gone', 'same']));
      seen.set('appeared', null);
      // ...then someone else wrote: a newer copy with another field, an insert, a removal.
      await c.putMany([{ _id: 'changed', _position: 2, other: 'x' }]);
      await c.deleteMany(['appeared', 'gone']);
      await c.putMany([{ _id: 'appeared', _position: 2, other: 'y' }]);
      await c.putMany(
        [
          { _id: 'changed', _position: 3, v: 3 },
          { _id: 'appeared', _position: 3, v: 3 },
          { _id: 'gone', _position: 3, v: 3 },
          { _id: 'same', _position: 3, v: 3 },
        ],
        seen,
      );
      expect(await c.find({ sort: [['_id', 1]] })).toEqual(
        ['appeared', 'changed', 'gone', 'same'].map((_id) => ({ _id, _position: 3, v: 3 })),
      );
      // A stale copy must not make an older write win either.
      await c.putMany([{ _id: 'same', _position: 2, v: 2 }], new Map([['same', { _id: 'same', _position: 1 }]]));
      expect(await c.get('same')).toEqual({ _id: 'same', _position: 3, v: 3 });
    });

    it('converges to the highest position under concurrent writers', async () => {
      const c = fresh();
      const positions = Array.from({ length: 20 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
      await Promise.all(positions.map((p) => c.putMany([{ _id: 'x', _position: p, v: p }])));
      expect(await c.get('x')).toEqual({ _id: 'x', _position: 20, v: 20 });

      // Whole batches racing over the same documents.
      const batches = Array.from({ length: 6 }, (_, b) =>
        Array.from({ length: 15 }, (_, i) => ({ _id: `y${i}`, _position: 10 * b + i, b })),
      );
      await Promise.all(batches.sort(() => Math.random() - 0.5).map((batch) => c.putMany(batch)));
      const stored = await c.getMany(batches[0]!.map((d) => d._id));
      for (let i = 0; i < 15; i++) expect(stored.get(`y${i}`)).toEqual({ _id: `y${i}`, _position: 50 + i, b: 5 });
    });

    it('replaceMany writes documents as given, without the position guard (rebuilds into a fresh collection)', async () => {
      const c = fresh();
      await c.replaceMany([
        { _id: 'a', _position: 5, v: 'a5' },
        { _id: 'b', _position: 2, v: 'b2' },
      ]);
      await c.replaceMany([{ _id: 'a', _position: 3, v: 'a3' }]);
      await c.replaceMany([]);
      expect(await c.find({ sort: [['_id', 1]] })).toEqual([
        { _id: 'a', _position: 3, v: 'a3' },
        { _id: 'b', _position: 2, v: 'b2' },
      ]);
    });

    it('accepts empty batches', async () => {
      const c = fresh();
      await c.putMany([]);
      await c.deleteMany([]);
      expect((await c.getMany([])).size).toBe(0);
    });

    it('reads many documents by id, leaving out the missing ones', async () => {
      const c = fresh();
      await c.putMany([
        { _id: 'a', _position: 1 },
        { _id: 'b', _position: 2 },
        { _id: 'c', _position: 3 },
      ]);
      const found = await c.getMany(['c', 'a', 'missing', 'a']);
      expect([...found.keys()].sort()).toEqual(['a', 'c']);
      expect(found.get('c')).toEqual({ _id: 'c', _position: 3 });
    });

    describe('find and count', () => {
      let c: ReadCollection<Doc>;
      beforeAll(async () => {
        c = fresh();
        await c.putMany(MIXED.map((d, i) => ({ ...d, _position: i + 1 })));
      });

      it.each(FILTER_CASES)('%s', async (_label, filter, expected) => {
        expect(ids(await c.find({ filter, sort: [['_id', 1]] }))).toBe(expected);
        expect(await c.count(filter)).toBe(expected === '' ? 0 : expected.split(',').length);
      });

      it('counts everything without a filter', async () => {
        expect(await c.count()).toBe(MIXED.length);
        expect(await c.find()).toHaveLength(MIXED.length);
      });

      it('sorts ascending in BSON type order (missing/null, numbers, strings, booleans), arrays by least element', async () => {
        expect(ids(await c.find({ sort: [['f', 1]] }))).toBe('3,4,1,6,8,5,9,2,7');
      });

      it('sorts descending, arrays by greatest element, ties by _id', async () => {
        expect(ids(await c.find({ sort: [['f', -1]] }))).toBe('7,2,9,6,5,8,1,3,4');
      });

      it('sorts missing values first, then breaks ties by _id', async () => {
        expect(ids(await c.find({ sort: [['s', 1]] }))).toBe('5,7,8,9,1,2,3,4,6');
      });

      it('sorts on several fields', async () => {
        expect(
          ids(
            await c.find({
              sort: [
                ['b', -1],
                ['_id', -1],
              ],
            }),
          ),
        ).toBe('1,2,9,8,7,6,5,4,3');
      });

      it('sorts on a dotted path', async () => {
        expect(ids(await c.find({ filter: { 'n.x': { $exists: true } }, sort: [['n.x', -1]] }))).toBe('5,9');
      });

      it('filters, sorts, skips and limits together', async () => {
        expect(ids(await c.find({ sort: [['_id', 1]], skip: 2, limit: 3 }))).toBe('3,4,5');
        expect(ids(await c.find({ filter: { f: { $ne: null } }, sort: [['_id', -1]], skip: 1, limit: 2 }))).toBe('8,7');
        expect(ids(await c.find({ sort: [['_id', 1]], skip: 100 }))).toBe('');
        expect(ids(await c.find({ sort: [['_id', 1]], limit: 100 }))).toBe('1,2,3,4,5,6,7,8,9');
      });

      it('returns nothing for limit 0 (the port says so, whatever MongoDB would)', async () => {
        expect(await c.find({ limit: 0 })).toEqual([]);
      });

      it('rejects operators outside the filter language and bad paging', async () => {
        await expect(c.find({ filter: { f: { $where: 'true' } } as unknown as Filter })).rejects.toThrow(
          /unsupported operator \$where/,
        );
        await expect(c.count({ $or: [] } as unknown as Filter)).rejects.toThrow(/invalid field name/);
        await expect(c.find({ filter: { f: { a: 1 } } as unknown as Filter })).rejects.toThrow(TypeError);
        await expect(c.find({ limit: -1 })).rejects.toThrow(RangeError);
        await expect(c.find({ skip: 1.5 })).rejects.toThrow(RangeError);
      });
    });

    it('orders strings by code point (UTF-8 bytes), not by UTF-16 unit or locale', async () => {
      const c = fresh();
      const words = ['😀', 'é', 'z', 'B', '\uffff', 'a', 'ab', ''];
      await c.putMany(words.map((w, i) => ({ _id: `w${i}`, _position: 1, w })));
      expect((await c.find({ sort: [['w', 1]] })).map((d) => d.w)).toEqual([
        '',
        'B',
        'a',
        'ab',
        'z',
        'é',
        '\uffff',
        '😀',
      ]);
      expect((await c.find({ filter: { w: { $gt: '\uffff' } } })).map((d) => d.w)).toEqual(['😀']);
    });

    it('deletes documents by id and forgets their positions', async () => {
      const c = fresh();
      await c.putMany([
        { _id: 'a', _position: 5 },
        { _id: 'b', _position: 5 },
        { _id: 'c', _position: 5 },
      ]);
      await c.deleteMany(['a', 'c', 'missing']);
      expect(ids(await c.find({ sort: [['_id', 1]] }))).toBe('b');
      await c.putMany([{ _id: 'a', _position: 1, back: true }]);
      expect(await c.get('a')).toEqual({ _id: 'a', _position: 1, back: true });
    });

    it('drops a collection without touching the others, and the collection can be used again', async () => {
      const c = fresh();
      const other = fresh();
      await c.putMany([{ _id: 'a', _position: 5 }]);
      await other.putMany([{ _id: 'a', _position: 5 }]);
      await c.drop();
      expect(await c.count()).toBe(0);
      expect(await c.get('a')).toBeNull();
      expect(await other.count()).toBe(1);
      await c.putMany([{ _id: 'a', _position: 1 }]);
      expect(await c.get('a')).toEqual({ _id: 'a', _position: 1 });
      await expect(fresh().drop()).resolves.toBeUndefined();
    });

    it('enforces unique indexes, still writing the rest of the batch', async () => {
      const name = `u_${randomUUID().replaceAll('-', '')}`;
      const indexes = [
        { fields: [['authId', 1]] as [string, 1][], unique: true },
        {
          fields: [
            ['merchantId', 1],
            ['seq', -1],
          ] as [string, 1 | -1][],
        },
      ];
      await store.ensureIndexes(name, indexes);
      await store.ensureIndexes(name, indexes);
      const c = store.collection<Doc>(name);
      await c.putMany([
        { _id: 'a', _position: 1, authId: 'A', merchantId: 'm', seq: 1 },
        { _id: 'b', _position: 1, authId: 'B', merchantId: 'm', seq: 2 },
      ]);

      // A new document taking a value already indexed.
      const inserted = c.putMany([
        { _id: 'c', _position: 2, authId: 'A' },
        { _id: 'd', _position: 2, authId: 'D' },
      ]);
      await expect(inserted).rejects.toBeInstanceOf(DuplicateKeyError);
      await expect(inserted).rejects.toMatchObject({ code: 'SETTLE_ERR_READ_STORE_DUPLICATE_KEY', ids: ['c'] });
      expect(await c.get('c')).toBeNull();
      expect(await c.get('d')).toEqual({ _id: 'd', _position: 2, authId: 'D' });

      // An existing document changing to a value another one holds.
      const replaced = c.putMany([
        { _id: 'b', _position: 3, authId: 'A' },
        { _id: 'e', _position: 3, authId: 'E' },
      ]);
      await expect(replaced).rejects.toMatchObject({ ids: ['b'] });
      expect(await c.get('b')).toMatchObject({ _position: 1, authId: 'B' });
      expect(await c.get('e')).toMatchObject({ authId: 'E' });

      // A document keeps its own value across versions; an old replay is still just ignored.
      await c.putMany([{ _id: 'a', _position: 4, authId: 'A', merchantId: 'm', seq: 1, v: 2 }]);
      await c.putMany([{ _id: 'a', _position: 1, authId: 'A', merchantId: 'm', seq: 1 }]);
      expect(await c.get('a')).toMatchObject({ _position: 4, v: 2 });

      // Once the holder is deleted the value is free.
      await c.deleteMany(['a']);
      await c.putMany([{ _id: 'c', _position: 5, authId: 'A' }]);
      expect(await c.get('c')).toMatchObject({ authId: 'A' });
    });

    it('keeps projection checkpoints, 0 until saved', async () => {
      const a = `cp-${randomUUID()}`;
      const b = `cp-${randomUUID()}`;
      expect(await store.getCheckpoint(a)).toBe(0);
      await store.saveCheckpoint(a, 42);
      await store.saveCheckpoint(b, 7);
      expect(await store.getCheckpoint(a)).toBe(42);
      await store.saveCheckpoint(a, 2 ** 40);
      expect(await store.getCheckpoint(a)).toBe(2 ** 40);
      expect(await store.getCheckpoint(b)).toBe(7);
    });
  });
}

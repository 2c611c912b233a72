import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryReadStore } from './memory.js';
import type { Filter, ReadDoc } from './port.js';

type Doc = ReadDoc & Record<string, unknown>;

const value = fc.oneof(
  fc.constantFrom('a', 'b', 'c', '2026-01-01', '2026-06-01'),
  fc.integer({ min: -2, max: 3 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.constantFrom('a', 'b', 1, 2), { maxLength: 3 }),
  fc.record({ x: fc.constantFrom(1, 'a') }),
);
const scalar = fc.constantFrom<unknown>('a', 'b', '2026-03-01', 1, 2, true);

const docs = fc.uniqueArray(
  fc.record(
    { _id: fc.string({ minLength: 1, maxLength: 4 }), status: value, due: value, other: value },
    { requiredKeys: ['_id'] },
  ),
  { selector: (d) => d._id, maxLength: 40 },
);

const condition = fc.oneof(
  scalar,
  fc.constant(null),
  fc.record({ $in: fc.array(scalar, { minLength: 1, maxLength: 3 }) }),
  fc.record({ $lte: scalar }, { requiredKeys: [] }),
  fc.record({ $gt: scalar, $lt: scalar }, { requiredKeys: ['$gt'] }),
  fc.record({ $ne: scalar }),
  fc.record({ $exists: fc.boolean() }),
);
const filter = fc.record({ status: condition, due: condition, other: condition }, { requiredKeys: [] });

describe('MemoryReadStore field indexes', () => {
  it('narrow finds without changing what they return (same documents, same order) as a full scan', async () => {
    await fc.assert(
      fc.asyncProperty(
        docs,
        fc.array(docs, { maxLength: 2 }),
        filter,
        fc.boolean(),
        async (initial, updates, f, sorted) => {
          const indexed = new MemoryReadStore();
          const plain = new MemoryReadStore();
          await indexed.ensureIndexes('c', [
            {
              fields: [
                ['status', 1],
                ['due', 1],
              ],
            },
            { fields: [['due', 1]] },
          ]);
          for (const store of [indexed, plain]) {
            let position = 1;
            await store.collection<Doc>('c').putMany(initial.map((d) => ({ ...d, _position: position })) as Doc[]);
            // Later versions move documents between buckets (and some are deleted).
            for (const batch of updates) {
              position++;
              await store.collection<Doc>('c').putMany(batch.map((d) => ({ ...d, _position: position })) as Doc[]);
              await store.collection<Doc>('c').deleteMany(batch.filter((_, i) => i % 5 === 4).map((d) => d._id));
            }
          }
          const opts = { filter: f as Filter, ...(sorted ? { sort: [['due', 1]] as [string, 1][] } : {}) };
          // Same documents in the same order, or the same refusal of a bad filter.
          const outcome = (store: MemoryReadStore) =>
            store
              .collection<Doc>('c')
              .find(opts)
              .catch((error: unknown) => ({ refused: (error as Error).message }));
          expect(await outcome(indexed)).toEqual(await outcome(plain));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('looks only at the matching bucket for a selective equality', async () => {
    const store = new MemoryReadStore();
    await store.ensureIndexes('requests', [{ fields: [['status', 1]] }]);
    const docs = Array.from({ length: 1000 }, (_, i) => ({
      _id: `r${i}`,
      _position: 1,
      status: i < 3 ? 'AUTHORIZING' : 'SETTLED',
    }));
    await store.collection('requests').putMany(docs);
    // A document whose getter throws would fail a full scan: the index must not touch it.
    const c = store.collection('requests') as unknown as { docs: Map<string, Record<string, unknown>> };
    const poisoned = c.docs.get('r500')!;
    Object.defineProperty(poisoned, 'status', {
      get() {
        throw new Error('scanned a document outside the bucket');
      },
    });
    const found = await store.collection('requests').find({ filter: { status: 'AUTHORIZING' } });
    expect(found.map((d) => d._id)).toEqual(['r0', 'r1', 'r2']);
  });
});

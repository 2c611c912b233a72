import { createPgliteClient } from '../eventStore/pgliteClient.js';
import { SqlEventStore } from '../eventStore/sqlEventStore.js';
import { describeIdempotencyContract } from '../testing/idempotencyContract.js';
import { MemoryIdempotencyStore, SqlIdempotencyStore } from './port.js';

describeIdempotencyContract('embedded (in-process)', async () => ({ store: new MemoryIdempotencyStore() }));

describeIdempotencyContract('SQL (PGlite, in memory)', async () => {
  const events = await SqlEventStore.create(await createPgliteClient(undefined));
  return { store: new SqlIdempotencyStore(events.client), close: () => events.close() };
});

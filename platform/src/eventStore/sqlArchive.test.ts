import { describeSqlArchive } from '../testing/sqlArchiveSuite.js';
import { createPgliteClient } from './pgliteClient.js';
import { SqlEventStore } from './sqlEventStore.js';

describeSqlArchive('embedded (PGlite, in memory)', async () =>
  SqlEventStore.create(await createPgliteClient(undefined), { pollMs: 50 }),
);

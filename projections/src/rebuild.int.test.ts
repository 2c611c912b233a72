import { randomUUID } from 'node:crypto';
import { MongoReadStore } from '@settle/platform';
import { describeRebuildScenarios } from './testing/rebuildScenarios.js';

/** MongoDB wire protocol from `infra/local/services up` (FerretDB), or any server named here. */
const url = process.env.SETTLE_TEST_MONGO_URL ?? 'mongodb://127.0.0.1:27017/settle';

describeRebuildScenarios(
  `MongoDB wire protocol (${url})`,
  () => MongoReadStore.create(url, { dbName: `settle_test_rebuild_${Date.now()}_${randomUUID().slice(0, 8)}` }),
  { teardown: (store) => (store as MongoReadStore).dropDatabase(), requests: 150 },
);

import { createPgliteClient } from '../eventStore/pgliteClient.js';
import { SqlEventStore } from '../eventStore/sqlEventStore.js';
import { silentLogger } from '../logger.js';
import { describeBusContract } from '../testing/busContract.js';
import { EventStoreBus } from './eventStoreBus.js';

describeBusContract(
  'embedded (event store log, PGlite in memory)',
  async () => {
    const eventStore = await SqlEventStore.create(await createPgliteClient(undefined));
    const bus = new EventStoreBus(eventStore, silentLogger());
    return {
      bus,
      eventStore,
      async close() {
        await bus.close();
        await eventStore.close();
      },
    };
  },
  { replicas: false, dlq: false },
);

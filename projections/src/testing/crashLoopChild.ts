/**
 * Test fixture (not part of the product): a projector over PostgreSQL and MongoDB whose `requests`
 * projection kills the process, as the OOM killer would, on `PaymentAuthorized` of one stream.
 * `node crashLoopChild.js <postgres-url> <mongodb-url> <streamId>`; exits 0 once caught up.
 * Used by `crashLoop.int.test.ts`.
 */
import { createPgClient, MongoReadStore, silentLogger, SqlEventStore } from '@settle/platform';
import { Projector } from '../projector.js';
import { requestsProjection } from '../requests.js';

const [pgUrl, mongoUrl, poisonStream] = process.argv.slice(2);
if (!pgUrl || !mongoUrl || !poisonStream)
  throw new Error('usage: crashLoopChild <postgres-url> <mongodb-url> <streamId>');
const eventStore = await SqlEventStore.create(await createPgClient(pgUrl));
const readStore = await MongoReadStore.create(mongoUrl);
const projector = new Projector(
  [
    {
      ...requestsProjection,
      async apply(event, uow) {
        if (event.streamId === poisonStream && event.type === 'PaymentAuthorized') process.kill(process.pid, 'SIGKILL');
        await requestsProjection.apply(event, uow);
      },
    },
  ],
  { eventStore, readStore, logger: silentLogger(), crashLoopAttempts: 3 },
);
await projector.start();
await projector.whenCaughtUp();
await projector.stop();
await readStore.close();
await eventStore.close();
process.stdout.write('caught up\n');

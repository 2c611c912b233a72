import { it } from 'vitest';
import { describeEventStoreContract } from '../testing/eventStoreContract.js';
import { EsdbEventStore } from './esdbEventStore.js';

/** e.g. esdb://admin:changeit@127.0.0.1:2113?tls=false (the docker-compose stack's KurrentDB). */
const url = process.env['SETTLE_TEST_ESDB_URL'];

const SKIPPED =
  'EventStoreDB contract skipped: SETTLE_TEST_ESDB_URL is not set (no EventStoreDB/KurrentDB package is reachable on this machine)';

if (url) {
  // One server for every run: specs work in fresh, randomly named streams, not a fresh database.
  describeEventStoreContract('EventStoreDB', () => EsdbEventStore.create(url), {
    openAnother: () => EsdbEventStore.create(url),
    writers: 8,
    appendsPerWriter: 100,
  });
} else {
  console.warn(SKIPPED);
  it.skip(SKIPPED, () => undefined);
}

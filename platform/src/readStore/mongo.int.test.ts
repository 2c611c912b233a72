import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoNetworkError, type MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { describeReadStoreContract } from '../testing/readStoreContract.js';
import { MongoReadStore } from './mongoReadStore.js';

/** MongoDB wire protocol from `infra/local/services up` (FerretDB), or any server named here. */
const url = process.env.SETTLE_TEST_MONGO_URL ?? 'mongodb://127.0.0.1:27017/settle';
const throwaway = () => `settle_test_${Date.now()}_${randomUUID().slice(0, 8)}`;

describeReadStoreContract(`MongoDB wire protocol (${url})`, () => MongoReadStore.create(url, { dbName: throwaway() }), {
  teardown: (store) => (store as MongoReadStore).dropDatabase(),
});

describe('MongoReadStore', () => {
  const dbName = throwaway();
  const opened: MongoReadStore[] = [];
  const open = async () => {
    const store = await MongoReadStore.create(url, { dbName });
    opened.push(store);
    return store;
  };
  afterAll(async () => {
    await opened[0]?.dropDatabase();
    await Promise.all(opened.map((s) => s.close()));
  });

  it('is durable: documents and checkpoints survive a new connection', async () => {
    const first = await open();
    expect(first.durable).toBe(true);
    expect(first.name).toContain(dbName);
    await first
      .collection<{ _id: string; _position: number; status: string }>('requests')
      .putMany([{ _id: 'r-1', _position: 9, status: 'SETTLED' }]);
    await first.saveCheckpoint('requests', 9);
    const second = await open();
    expect(await second.collection('requests').get('r-1')).toEqual({ _id: 'r-1', _position: 9, status: 'SETTLED' });
    expect(await second.getCheckpoint('requests')).toBe(9);
  });

  // FerretDB 1.24 held one PostgreSQL connection per matching replaceOne until the whole bulk ended
  // and wedged for good once a bulk outgrew its pool (120 in infra/local/services): see `putMany`.
  it(
    'rewrites more existing documents in one batch than FerretDB has PostgreSQL connections',
    { timeout: 60_000 },
    async () => {
      const store = await open();
      const c = store.collection<{ _id: string; _position: number; v: number; old?: boolean }>('big_batch');
      const n = 400;
      await c.putMany(Array.from({ length: n }, (_, i) => ({ _id: `b${i}`, _position: 1, v: 1, old: true })));
      await c.putMany(Array.from({ length: n }, (_, i) => ({ _id: `b${i}`, _position: 2, v: 2 })));
      expect(await c.count({ v: 2, old: { $exists: false } })).toBe(n);
      // And the server still answers everyone else.
      await (await open()).ping();
    },
  );

  // The FerretDB outage spec's "read store down for good after FerretDB came back": mongodb 7.9's
  // server monitor checked the server on a socket that was destroyed but had not emitted `close`
  // yet, waited for a `drain` that never comes, and never checked again (see MongoClientKeeper).
  // These put the driver in such a state on purpose, through its internals (the race itself needs
  // a server closing every connection at once on a busy machine), and a lost application
  // connection marks the server Unknown: without a new client every operation fails from then on.
  interface MonitoredServer {
    monitor: {
      connection: { socket: { destroy(): void } } | null;
      monitorId?: { stop(): void };
      requestCheck(): void;
      s: { state: string };
    };
    handleError(error: Error): void;
  }
  const serverOf = (store: MongoReadStore): MonitoredServer => {
    const client = (store as unknown as { keeper: { client: MongoClient } }).keeper.client;
    const topology = (client as unknown as { topology: { s: { servers: Map<string, MonitoredServer> } } }).topology;
    return [...topology.s.servers.values()][0]!;
  };
  const answersAgain = async (store: MongoReadStore) => {
    const t0 = Date.now();
    while (Date.now() - t0 < 30_000) {
      const ok = await store.ping().then(
        () => true,
        () => false,
      );
      if (ok) return true;
      await sleep(250);
    }
    return false;
  };
  const readsAndWrites = async (store: MongoReadStore, id: string) => {
    const c = store.collection<{ _id: string; _position: number }>('after_stall');
    await c.putMany([{ _id: id, _position: 1 }]);
    expect(await c.get(id)).toEqual({ _id: id, _position: 1 });
  };

  it("finds the server again when the driver's server monitor hangs in a check", { timeout: 60_000 }, async () => {
    const store = await MongoReadStore.create(url, { dbName, monitorStallMs: 2000 });
    opened.push(store);
    const server = serverOf(store);
    // Past minHeartbeatFrequencyMS, so that a requested check runs at once; the monitor's connection is open.
    await sleep(700);
    expect(server.monitor.connection).not.toBeNull();
    server.monitor.connection!.socket.destroy();
    server.monitor.requestCheck();
    server.handleError(new MongoNetworkError('connection 3 to 127.0.0.1:27017 closed'));
    expect(server.monitor.s.state).toBe('monitoring');

    expect(await answersAgain(store), 'the read store answers again').toBe(true);
    expect(store.clientReplacements).toBe(1);
    await readsAndWrites(store, 'hung');
  });

  it("finds the server again when the driver's server monitor stops checking", { timeout: 60_000 }, async () => {
    const store = await MongoReadStore.create(url, {
      dbName,
      monitorStallMs: 2000,
      clientOptions: { heartbeatFrequencyMS: 1000 },
    });
    opened.push(store);
    const server = serverOf(store);
    server.monitor.monitorId!.stop();
    server.handleError(new MongoNetworkError('connection 3 to 127.0.0.1:27017 closed'));

    expect(await answersAgain(store), 'the read store answers again').toBe(true);
    expect(store.clientReplacements).toBe(1);
    await readsAndWrites(store, 'stopped');
  });

  it('fails to start with a message naming the part and the URL, without the password', async () => {
    const bad = 'mongodb://settle:s3cret@127.0.0.1:1/settle';
    const failure = MongoReadStore.create(bad, { serverSelectionTimeoutMS: 500 });
    await expect(failure).rejects.toMatchObject({ code: 'SETTLE_ERR_STORE_UNAVAILABLE' });
    await expect(failure).rejects.toThrow(
      /^read store: could not connect to MongoDB at mongodb:\/\/settle:\*\*\*@127\.0\.0\.1:1\/settle/,
    );
    await expect(failure).rejects.not.toThrow(/s3cret/);
  });
});

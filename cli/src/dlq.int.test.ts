import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEvent } from '@settle/domain';
import {
  createPgClient,
  KafkaBus,
  newId,
  parseKafkaBrokers,
  readOperatorActions,
  silentLogger,
  SqlEventStore,
  type Consumer,
} from '@settle/platform';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actOnDlq, formatDlq, listDlq } from './dlq.js';
import { startSettle, type RunningSettle } from './start.js';
import { createTestWorld, freePort, KAFKA_URL, MONGO_URL, waitUntil, type TestWorld } from './testing/processes.js';

const meta = { correlationId: 'dlq-int', causationId: 'dlq-int', actor: 'test' };

/**
 * `settle dlq` against a running Settle on the real parts: Kafka dead letters listed, re-driven
 * and skipped through the operator API; the projector's parked records persisted in MongoDB
 * (FerretDB), surviving a restart.
 */
describe('settle dlq on PostgreSQL + Kafka + MongoDB', () => {
  let world: TestWorld;
  let store: SqlEventStore;
  let settle: RunningSettle | undefined;
  let env: { url: string; clientId: string; clientSecret: string };
  const dataDir = mkdtempSync(join(tmpdir(), 'settle-dlq-int-'));

  const start = async () => {
    const httpPort = await freePort();
    env = { url: `http://127.0.0.1:${httpPort}`, clientId: 'demo-operator', clientSecret: 'demo-secret' };
    settle = await startSettle({
      roles: ['command', 'query', 'projector'],
      env: {
        ...world.env,
        SETTLE_ENV: 'development',
        SETTLE_DATA_DIR: dataDir,
        SETTLE_HTTP_PORT: String(httpPort),
        SETTLE_GRPC_PORT: String(await freePort()),
        SETTLE_SANDBOX_PORT: String(await freePort()),
        SETTLE_LOG_LEVEL: 'silent',
        SETTLE_RATE_LIMIT: '0',
        SETTLE_RATE_LIMIT_IP: '0',
        SETTLE_DEV_POISON_REFERENCE: 'poison-',
      },
    });
  };

  const append = (streamId: string, type: string, data: unknown) =>
    store.append(streamId, [{ id: newId(), type, data, metadata: meta }], { expectedRevision: 'any' });
  const register = (id: string, reference: string) =>
    append(`request-${id}`, 'RequestRegistered', {
      requestId: id,
      authId: `a-${id}`,
      merchantId: 'demo-merchant',
      amount: 100,
      currency: 'EUR',
      reference,
      registeredAt: new Date().toISOString(),
    });

  beforeAll(async () => {
    world = await createTestWorld();
    store = await SqlEventStore.create(await createPgClient(world.pgUrl));
    await start();
  }, 120_000);

  afterAll(async () => {
    await settle?.stop();
    await store?.close();
    await world?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('lists Kafka dead letters with topic/partition/offset/key/error; retry re-drives one, skip drops one (audited)', async () => {
    const bus = await KafkaBus.create({
      brokers: parseKafkaBrokers(KAFKA_URL),
      logger: silentLogger(),
      topicPrefix: world.topicPrefix,
      eventStore: store,
      forwarder: { streamPrefixes: ['request-'] },
      consumer: {
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 250,
        maxWaitTimeMs: 100,
        maxAttempts: 2,
        retryInitialDelayMs: 20,
        retryMaxDelayMs: 100,
      },
    });
    let consumer: Consumer | undefined;
    try {
      const poison = new Set(['request-k1', 'request-k2']);
      let healed = false;
      const handled: string[] = [];
      consumer = await bus.consume({ group: 'dlqtest', streamPrefixes: ['request-k'] }, async (e: StoredEvent) => {
        if (poison.has(e.streamId) && !healed) throw new Error(`cannot handle ${e.type}`);
        handled.push(e.streamId);
      });
      await register('k1', 'order-k1');
      await register('k2', 'order-k2');
      await register('k3', 'order-k3');
      const list = await waitUntil(
        'two dead letters',
        async () => {
          const l = await listDlq(env);
          return l.deadLetters.length === 2 && l;
        },
        60_000,
        500,
      );
      expect(handled).toEqual(['request-k3']);
      const byKey = new Map(list.deadLetters.map((d) => [d.key, d]));
      const k1 = byKey.get('request-k1')!;
      expect(k1).toMatchObject({
        topic: `${world.topicPrefix}request.dlq`,
        group: 'dlqtest',
        attempts: 2,
        error: 'cannot handle RequestRegistered',
        originalTopic: `${world.topicPrefix}request`,
        eventType: 'RequestRegistered',
      });
      expect(k1.id).toBe(`${k1.topic}/${k1.partition}/${k1.offset}`);
      expect(k1.errorCode).toMatch(/^SETTLE_ERR_/);
      expect(formatDlq(list)).toContain(`${k1.errorCode}: cannot handle RequestRegistered`);

      healed = true;
      expect(await actOnDlq('retry', k1.id, env)).toMatchObject({ ok: true });
      await waitUntil('the re-driven message handled', async () => handled.includes('request-k1'), 30_000);
      const k2 = byKey.get('request-k2')!;
      expect(await actOnDlq('skip', k2.id, env)).toMatchObject({ ok: true });
      expect((await listDlq(env)).deadLetters).toEqual([]);
      await new Promise((r) => setTimeout(r, 1000));
      expect(handled.filter((h) => h === 'request-k2')).toEqual([]); // skipped: never handled
      await expect(actOnDlq('retry', k1.id, env)).rejects.toThrow(/NOT_FOUND: no dead letter/);

      const audit = await readOperatorActions(store);
      expect(audit.map((e) => [e.data.action, e.data.target, e.metadata.actor])).toEqual(
        expect.arrayContaining([
          ['DeadLetterRetried', k1.id, 'demo-operator'],
          ['DeadLetterSkipped', k2.id, 'demo-operator'],
        ]),
      );
    } finally {
      await consumer?.stop();
      await bus.close();
    }
  }, 120_000);

  it('persists the parked record in MongoDB: still parked after a restart, then skipped and resumed in order', async () => {
    await register('m1', 'poison-m1');
    await register('m2', 'order-m2');
    await append('request-m1', 'PaymentAuthorized', { attempt: 1, providerPaymentId: 'p-m1' });
    await append('request-m1', 'PaymentSettled', { settledAt: new Date().toISOString(), providerPaymentId: 'p-m1' });
    await waitUntil(
      'request-m1 parked',
      async () => (await listDlq(env)).parked.some((p) => p.streamId === 'request-m1'),
      30_000,
    );

    const mongo = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000 });
    try {
      const record = await mongo
        .db(world.mongoDatabase)
        .collection('parked_streams')
        .findOne({ streamId: 'request-m1' });
      expect(record).toMatchObject({
        _id: 'requests|request-m1',
        projection: 'requests',
        eventType: 'PaymentAuthorized',
        attempts: 1,
        error: expect.stringMatching(/poison reference poison-m1/),
      });
    } finally {
      await mongo.close();
    }

    await settle!.stop();
    settle = undefined;
    await append('request-m1', 'MerchantNotified', {
      attempt: 1,
      httpStatus: 200,
      forStatus: 'SETTLED',
      webhookId: 'w',
    });
    await start();
    expect((await listDlq(env)).parked).toMatchObject([{ owner: 'requests', streamId: 'request-m1' }]);

    expect(await actOnDlq('skip', 'request-m1', env)).toMatchObject({ ok: true });
    expect((await listDlq(env)).parked).toEqual([]);
    const mongo2 = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000 });
    try {
      const doc = await mongo2
        .db(world.mongoDatabase)
        .collection('requests')
        .findOne({ _id: 'm1' as never });
      expect(doc?.status).toBe('SETTLED');
      expect((doc?.events as { type: string }[]).map((e) => e.type)).toEqual([
        'RequestRegistered',
        'PaymentSettled',
        'MerchantNotified',
      ]);
      expect(await mongo2.db(world.mongoDatabase).collection('parked_streams').countDocuments({})).toBe(0);
    } finally {
      await mongo2.close();
    }
  }, 120_000);
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleClient } from './testing/client.js';
import { createTestWorld, embeddedTestEnv, queryEvents, waitUntil, type TestWorld } from './testing/processes.js';
import { startSettle, type RunningSettle } from './start.js';

/**
 * A command whose append is held up on the real PostgreSQL (a second connection holds a SHARE
 * lock on settle_events, as a CREATE INDEX would) fails after SETTLE_PG_STATEMENT_TIMEOUT with a
 * 503 and nothing stored; /health/ready turns red naming the event store and new commands are
 * refused at once; once the lock is gone, readiness is green again and the client's retry with
 * the same Idempotency-Key is accepted, and stored once.
 */
describe('a PostgreSQL statement timeout during a command', () => {
  let world: TestWorld;
  let settle: RunningSettle;
  let token = '';
  const dataDir = mkdtempSync(join(tmpdir(), 'settle-pgtimeouts-'));

  beforeAll(async () => {
    world = await createTestWorld();
    settle = await startSettle({
      roles: ['command'],
      env: await embeddedTestEnv(dataDir, {
        SETTLE_EVENT_STORE: world.pgUrl,
        SETTLE_PG_STATEMENT_TIMEOUT: '700ms',
      }),
    });
    token = await settleClient(settle.httpUrl).token();
  }, 120_000);

  afterAll(async () => {
    await settle?.stop();
    await world?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  const register = (key: string) =>
    fetch(`${settle.httpUrl}/v1/requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ amount: 1000, currency: 'EUR', reference: key }),
      signal: AbortSignal.timeout(10_000),
    });
  const ready = async () => {
    const res = await fetch(`${settle.httpUrl}/health/ready`);
    return {
      status: res.status,
      body: (await res.json()) as { down?: string[]; checks: { name: string; error?: string }[] },
    };
  };
  const registered = async () =>
    Number(
      (
        await queryEvents<{ n: number }>(
          world,
          `SELECT count(*) AS n FROM settle_events WHERE type = 'RequestRegistered'`,
        )
      )[0]!.n,
    );

  it('answers 503 after the timeout with nothing stored, turns ready red, and accepts the retry once the lock is gone', async () => {
    expect((await ready()).status).toBe(200);
    const holder = new pg.Client({ connectionString: world.pgUrl });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE settle_events IN SHARE MODE');
    try {
      const t0 = Date.now();
      const first = await register('order-timeout-1');
      const ms = Date.now() - t0;
      expect(first.status).toBe(503);
      expect(first.headers.get('retry-after')).toBe('2');
      expect(((await first.json()) as { code: string }).code).toBe('SETTLE_ERR_UNAVAILABLE');
      expect(ms).toBeGreaterThanOrEqual(600);
      expect(ms).toBeLessThan(5000);

      // The part monitor heard of it at once, and its probe sees appends still cannot take their locks.
      const red = await ready();
      expect(red.status).toBe(503);
      expect(red.body.down).toEqual(['eventStore']);
      expect(red.body.checks[0]!.error).toMatch(/statement timed out|cannot take their locks/);
      // New commands are refused at once, before anything is recorded.
      const t1 = Date.now();
      const refused = await register('order-timeout-2');
      expect(refused.status).toBe(503);
      expect(Date.now() - t1).toBeLessThan(500);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect(await registered()).toBe(0);

    await waitUntil('ready again', async () => (await ready()).status === 200, 10_000, 200);
    const retry = await register('order-timeout-1');
    expect(retry.status).toBe(202);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    const again = await register('order-timeout-1');
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await registered()).toBe(1);
  }, 60_000);
});

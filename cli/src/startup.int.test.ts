import { afterAll, describe, expect, it } from 'vitest';
import { createTestWorld, freePort, spawnSettle, stopAllSettle, type TestWorld } from './testing/processes.js';

/**
 * Issue 3, "Failure behaviour": a missing or wrong URL fails start-up with a message naming the
 * part and the URL (a port where nothing listens, on the shared servers for the other parts).
 */

const worlds: TestWorld[] = [];
afterAll(async () => {
  await stopAllSettle();
  for (const w of worlds) await w.cleanup();
});

describe('start-up with a part that cannot be reached', () => {
  it(
    'exits with SETTLE_ERR_STARTUP_CONNECT naming the part and its URL (password hidden)',
    { timeout: 180_000 },
    async () => {
      const world = await createTestWorld();
      worlds.push(world);
      const closed = await freePort();
      const pg = new URL(world.env.SETTLE_EVENT_STORE!);
      pg.port = String(closed);
      const cases = [
        { variable: 'SETTLE_EVENT_STORE', value: pg.toString(), part: 'event store (PostgreSQL)' },
        { variable: 'SETTLE_BUS', value: `kafka://127.0.0.1:${closed}`, part: 'bus (Kafka)' },
        { variable: 'SETTLE_READ_STORE', value: `mongodb://127.0.0.1:${closed}/settle`, part: 'read store (MongoDB)' },
        { variable: 'SETTLE_REDIS_URL', value: `redis://127.0.0.1:${closed}`, part: '(Redis)' },
      ];
      const outcomes = await Promise.all(
        cases.map(async (c) => {
          const started = Date.now();
          try {
            const p = await spawnSettle({
              name: `startup-${c.variable}`,
              roles: ['command', 'query', 'projector', 'reactor', 'scheduler'],
              env: { ...world.env, [c.variable]: c.value },
              readyTimeoutMs: 90_000,
            });
            await p.stop();
            return { ...c, error: 'started', ms: Date.now() - started };
          } catch (error) {
            return { ...c, error: (error as Error).message, ms: Date.now() - started };
          }
        }),
      );
      for (const o of outcomes) {
        console.log(`[startup] ${o.variable}: failed after ${o.ms} ms`);
        expect(o.error, o.variable).toMatch(/exited before it was ready/);
        expect(o.error, o.variable).toContain('SETTLE_ERR_STARTUP_CONNECT');
        expect(o.error, o.variable).toContain(o.part);
        expect(o.error, o.variable).toContain(o.value.replace('settle:settle@', 'settle:***@'));
        expect(o.error, o.variable).not.toContain(':settle@');
      }
    },
  );
});

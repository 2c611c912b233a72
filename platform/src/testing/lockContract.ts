import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LockManager } from '../lock/port.js';

export interface LockContractOptions {
  /**
   * Whether a lock stays held while `fn` runs longer than its TTL (Redlock extends it). Adapters
   * that let it lapse skip that test.
   */
  extendsWhileRunning?: boolean;
}

/**
 * One contract for every LockManager adapter. `factory` returns the managers of the replicas
 * that compete for locks: separate instances on one server for a distributed adapter (the test
 * spreads its callers across them), the same instance for an in-process one.
 */
export function describeLockContract(
  name: string,
  factory: () => Promise<LockManager[]>,
  opts: LockContractOptions = {},
): void {
  describe(`LockManager contract: ${name}`, () => {
    let replicas: LockManager[];
    beforeAll(async () => {
      replicas = await factory();
    });
    afterAll(async () => {
      await Promise.all([...new Set(replicas ?? [])].map((m) => m.close()));
    });
    const replica = (i: number) => replicas[i % replicas.length]!;
    const key = () => `test:${randomUUID()}`;

    it('runs fn under the lock and returns its value', async () => {
      await expect(replica(0).tryWithLock(key(), 5000, async () => 42)).resolves.toEqual({ acquired: true, value: 42 });
    });

    it('does not wait for a held lock: another caller is turned away at once and fn is not run', async () => {
      const k = key();
      let release!: () => void;
      const holding = replica(0).tryWithLock(k, 5000, () => new Promise<string>((r) => (release = () => r('done'))));
      await sleep(50);
      let ran = false;
      const started = Date.now();
      const other = await replica(1).tryWithLock(k, 5000, async () => (ran = true));
      expect(Date.now() - started).toBeLessThan(1000);
      expect(other).toEqual({ acquired: false });
      expect(ran).toBe(false);
      release();
      await expect(holding).resolves.toEqual({ acquired: true, value: 'done' });
    });

    it('locks keys independently', async () => {
      const outer = await replica(0).tryWithLock(key(), 5000, () =>
        replica(1).tryWithLock(key(), 5000, async () => 'inner'),
      );
      expect(outer).toEqual({ acquired: true, value: { acquired: true, value: 'inner' } });
    });

    it('releases the lock when fn resolves', async () => {
      const k = key();
      await replica(0).tryWithLock(k, 5000, async () => 1);
      await expect(replica(1).tryWithLock(k, 5000, async () => 2)).resolves.toEqual({ acquired: true, value: 2 });
    });

    it("releases the lock when fn throws, and passes fn's error on", async () => {
      const k = key();
      const boom = new Error('boom');
      await expect(
        replica(0).tryWithLock(k, 5000, async () => {
          throw boom;
        }),
      ).rejects.toBe(boom);
      await expect(replica(1).tryWithLock(k, 5000, async () => 'again')).resolves.toEqual({
        acquired: true,
        value: 'again',
      });
    });

    it('lets one of 20 simultaneous callers in, across replicas', async () => {
      const k = key();
      let active = 0;
      let maxActive = 0;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          replica(i).tryWithLock(k, 5000, async () => {
            maxActive = Math.max(maxActive, ++active);
            await sleep(100);
            active--;
            return i;
          }),
        ),
      );
      expect(maxActive).toBe(1);
      expect(results.filter((r) => r.acquired)).toHaveLength(1);
      await expect(replica(1).tryWithLock(k, 5000, async () => 'free')).resolves.toEqual({
        acquired: true,
        value: 'free',
      });
    });

    it('never lets two callers in at once under sustained contention', async () => {
      const k = key();
      let active = 0;
      let maxActive = 0;
      let runs = 0;
      const until = Date.now() + 1200;
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          while (Date.now() < until) {
            await replica(i).tryWithLock(k, 5000, async () => {
              maxActive = Math.max(maxActive, ++active);
              runs++;
              await sleep(15);
              active--;
            });
            await sleep(Math.random() * 10);
          }
        }),
      );
      expect(maxActive).toBe(1);
      expect(runs).toBeGreaterThan(3);
    });

    const extendTitle = `keeps the lock while fn runs past the TTL${opts.extendsWhileRunning ? '' : ' — skipped: this adapter lets the lock lapse after its TTL'}`;
    it.skipIf(!opts.extendsWhileRunning)(extendTitle, async () => {
      const k = key();
      const holding = replica(0).tryWithLock(k, 400, async () => {
        await sleep(1300);
        return 'slow';
      });
      // Probe at 200, 700 and 1100 ms: twice past the 400 ms TTL.
      for (const wait of [200, 500, 400]) {
        await sleep(wait);
        await expect(replica(1).tryWithLock(k, 400, async () => 'stolen')).resolves.toEqual({ acquired: false });
      }
      await expect(holding).resolves.toEqual({ acquired: true, value: 'slow' });
      await expect(replica(1).tryWithLock(k, 400, async () => 'next')).resolves.toEqual({
        acquired: true,
        value: 'next',
      });
    });
  });
}

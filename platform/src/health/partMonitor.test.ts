import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { StoreUnavailableError } from '../errors.js';
import { PartMonitor } from './partMonitor.js';
import { isUnavailableError } from './unavailable.js';
import { createRetryBackoff } from './backoff.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PartMonitor', () => {
  it('marks a part down when its probe fails or hangs, up when it answers again, and exports settle_part_up', async () => {
    let mode: 'up' | 'fail' | 'hang' = 'up';
    const registry = new Registry();
    const monitor = new PartMonitor({
      parts: [
        {
          name: 'bus',
          description: 'Kafka (127.0.0.1:9092)',
          probe: () =>
            mode === 'up'
              ? Promise.resolve()
              : mode === 'fail'
                ? Promise.reject(new Error('connect ECONNREFUSED'))
                : new Promise(() => undefined),
        },
        { name: 'redis', description: 'Redis', probe: async () => undefined },
      ],
      logger: silentLogger(),
      intervalMs: 20,
      timeoutMs: 30,
      registry,
    });
    const changes: string[] = [];
    monitor.onChange((s) => changes.push(`${s.name}:${s.up ? 'up' : 'down'}`));
    monitor.start();
    try {
      expect(monitor.down()).toEqual([]);
      mode = 'fail';
      await sleep(100);
      expect(monitor.down().map((s) => s.name)).toEqual(['bus']);
      expect(monitor.status('bus')).toMatchObject({ up: false, error: 'connect ECONNREFUSED' });
      expect(monitor.down(['redis'])).toEqual([]);
      expect(await registry.getSingleMetricAsString('settle_part_up')).toMatch(/settle_part_up\{part="bus"\} 0/);

      mode = 'up';
      await sleep(100);
      expect(monitor.down()).toEqual([]);
      mode = 'hang';
      await sleep(150);
      expect(monitor.status('bus')).toMatchObject({ up: false, error: 'no answer within 30 ms' });
      mode = 'up';
      await sleep(100);
      expect(monitor.status('bus')?.up).toBe(true);
      expect(await registry.getSingleMetricAsString('settle_part_up')).toMatch(/settle_part_up\{part="bus"\} 1/);
      expect(changes).toEqual(['bus:down', 'bus:up', 'bus:down', 'bus:up']);

      monitor.markDown('redis', 'connection closed');
      expect(monitor.status('redis')).toMatchObject({ up: false, error: 'connection closed' });
      await sleep(60);
      expect(monitor.status('redis')?.up).toBe(true);
    } finally {
      monitor.stop();
    }
    // Closing connections at shutdown is no outage.
    monitor.markDown('redis', 'connection closed');
    expect(monitor.status('redis')?.up).toBe(true);
  });
});

describe('isUnavailableError', () => {
  it('knows driver errors that mean a server could not be reached', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(isUnavailableError(refused)).toBe(true);
    expect(isUnavailableError(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe(true);
    expect(isUnavailableError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isUnavailableError(Object.assign(new Error('x'), { name: 'MongoServerSelectionError' }))).toBe(true);
    expect(isUnavailableError(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toBe(true);
    expect(isUnavailableError(new Error('wrapped', { cause: refused }))).toBe(true);
    expect(isUnavailableError(new AggregateError([refused]))).toBe(true);
    expect(isUnavailableError(new StoreUnavailableError('event store'))).toBe(true);
  });

  it('knows PostgreSQL statement and lock timeouts and the driver giving up on an answer (retryable: 503)', () => {
    const cancelled = Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
    expect(isUnavailableError(cancelled)).toBe(true);
    expect(isUnavailableError(Object.assign(new Error('lock timeout'), { code: '55P03' }))).toBe(true);
    expect(isUnavailableError(new Error('Query read timeout'))).toBe(true);
    expect(isUnavailableError(new Error('my query read timeout handling is wrong'))).toBe(false);
  });

  it('leaves bugs and refusals alone', () => {
    expect(isUnavailableError(new TypeError('x is undefined'))).toBe(false);
    expect(isUnavailableError(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
    expect(isUnavailableError(undefined)).toBe(false);
  });
});

describe('createRetryBackoff', () => {
  it('grows from the initial delay up to the cap, and starts over after reset', () => {
    const backoff = createRetryBackoff(100, 1000);
    const delays = Array.from({ length: 12 }, () => backoff.next());
    expect(delays[0]).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1000);
    expect(Math.max(...delays.slice(6))).toBeGreaterThan(delays[0]!);
    backoff.reset();
    expect(backoff.next()).toBeLessThanOrEqual(200);
  });
});

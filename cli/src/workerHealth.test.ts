import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, PartMonitor } from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partReadiness } from './health.js';
import { startSettle, type RunningSettle } from './start.js';
import { embeddedTestEnv } from './testing/processes.js';

describe('a worker-only process (projector role alone, embedded parts) serves health and metrics', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'settle-worker-health-'));
  let settle: RunningSettle | undefined;
  let url = '';

  beforeAll(async () => {
    settle = await startSettle({ roles: ['projector'], env: await embeddedTestEnv(dataDir) });
    url = settle.httpUrl;
  }, 120_000);

  afterAll(async () => {
    await settle?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('answers /health/live, /health/ready (the event store and the projector caught up) and /metrics on SETTLE_HTTP_PORT', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const live = await fetch(`${url}/health/live`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });

    let ready: Response | undefined;
    for (let i = 0; i < 100; i++) {
      ready = await fetch(`${url}/health/ready`);
      if (ready.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready!.status).toBe(200);
    const body = (await ready!.json()) as { status: string; checks: { name: string; status: string }[] };
    expect(body.status).toBe('ready');
    // Embedded: the event store is the one probed part; the projector adds its catching-up check.
    expect(body.checks).toEqual([
      { name: 'eventStore', status: 'up' },
      { name: 'projections', status: 'up' },
    ]);

    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/^settle_part_up\{part="eventStore"\} 1$/m);
    expect(text).toContain('# TYPE settle_projection_lag_events gauge');
  });

  it('serves no REST, GraphQL or API documentation routes', async () => {
    for (const [method, path] of [
      ['POST', '/v1/auth/token'],
      ['POST', '/v1/requests'],
      ['GET', '/v1/requests/x'],
      ['POST', '/graphql'],
      ['GET', '/docs'],
      ['GET', '/openapi.json'],
    ] as const) {
      const res = await fetch(`${url}${path}`, {
        method,
        ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}),
      });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers.get('content-type'), `${method} ${path}`).toMatch(/^application\/problem\+json/);
    }
  });
});

describe('readiness of the worker roles', () => {
  const logger = createLogger({ level: 'silent' });
  const monitor = (down: string[]) =>
    new PartMonitor({
      logger,
      parts: ['eventStore', 'readStore', 'bus', 'redis'].map((name) => ({
        name,
        description: `the ${name}`,
        probe: async () => {
          if (down.includes(name)) throw new Error('connection refused');
        },
      })),
    });

  it('names the parts each worker role uses, and is red while one of them is down', async () => {
    const health = monitor(['bus']);
    const checks = async (roles: Parameters<typeof partReadiness>[0]) =>
      Promise.all(
        partReadiness(roles, health).map(async (c) =>
          c.check().then(
            () => `${c.name} up`,
            (error: unknown) => `${c.name} down: ${(error as Error).message}`,
          ),
        ),
      );
    expect(await checks(['reactor'])).toEqual(['eventStore up', 'bus up', 'redis up']);
    await health.check('bus');
    expect(await checks(['reactor'])).toEqual([
      'eventStore up',
      expect.stringMatching(/^bus down: the bus is down since .*: connection refused$/),
      'redis up',
    ]);
    // The projector and the scheduler do not use Kafka: the bus being down leaves them ready.
    expect(await checks(['projector'])).toEqual(['eventStore up', 'readStore up', 'redis up']);
    expect(await checks(['scheduler'])).toEqual(['eventStore up', 'readStore up', 'redis up']);
    expect(await checks(['payments'])).toEqual([]);
  });
});

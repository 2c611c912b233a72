import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestWorld,
  freePort,
  REDIS_URL,
  spawnSettle,
  stopAllSettle,
  waitUntil,
  type SettleProcess,
  type TestWorld,
} from './testing/processes.js';
import { startTcpProxy, type TcpProxy } from './testing/tcpProxy.js';

/**
 * A process running worker roles only (how replicas are deployed: `settle start --roles
 * reactor,scheduler`, or `projector`) serves /health/live, /health/ready and /metrics on
 * SETTLE_HTTP_PORT, and no API. Real PostgreSQL, Kafka, FerretDB and Redis; Redis is reached
 * through a proxy on a private port, so the spec can cut it off from this process alone.
 */

interface Ready {
  status: string;
  down?: string[];
  checks: { name: string; status: string; error?: string }[];
}

const readiness = async (p: SettleProcess) => {
  const res = await fetch(`${p.httpUrl}/health/ready`, { signal: AbortSignal.timeout(3000) });
  return { code: res.status, body: (await res.json()) as Ready };
};

describe('worker-only processes on the real parts', () => {
  let world: TestWorld;
  let redis: TcpProxy;
  let worker: SettleProcess;
  let projector: SettleProcess;

  beforeAll(async () => {
    world = await createTestWorld();
    const target = new URL(REDIS_URL);
    redis = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) }, await freePort());
    const env = { ...world.env, SETTLE_REDIS_URL: `redis://127.0.0.1:${redis.port}` };
    [worker, projector] = await Promise.all([
      spawnSettle({ name: 'worker', roles: ['reactor', 'scheduler'], env }),
      spawnSettle({ name: 'projector', roles: ['projector'], env: world.env }),
    ]);
  }, 180_000);

  afterAll(async () => {
    await stopAllSettle();
    await redis?.close();
    await world?.cleanup();
  }, 120_000);

  it('serve live, ready (naming the parts their roles use) and metrics, and no API', async () => {
    for (const p of [worker, projector]) {
      const live = await fetch(`${p.httpUrl}/health/live`);
      expect(live.status).toBe(200);
    }
    const w = await readiness(worker);
    expect(w.code).toBe(200);
    expect(w.body.checks.map((c) => `${c.name} ${c.status}`)).toEqual([
      'eventStore up',
      'bus up',
      'redis up',
      'readStore up',
    ]);
    const p = await readiness(projector);
    expect(p.code).toBe(200);
    expect(p.body.checks.map((c) => `${c.name} ${c.status}`)).toEqual([
      'eventStore up',
      'readStore up',
      'redis up',
      'projections up',
    ]);

    const metrics = await (await fetch(`${projector.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^settle_part_up\{part="bus"\} 1$/m);
    // The projector's lag gauges (no series yet: no event has been stored in this world).
    expect(metrics).toContain('# TYPE settle_projection_lag_events gauge');

    for (const p of [worker, projector])
      for (const path of ['/v1/requests', '/graphql']) {
        const res = await fetch(`${p.httpUrl}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        expect(res.status, `${p.name} POST ${path}`).toBe(404);
      }
  });

  it('turns /health/ready red naming Redis while Redis is cut off, green again once it is back; live stays 200', async () => {
    await redis.cut();
    const red = await waitUntil(
      'the worker reporting Redis down',
      async () => {
        const r = await readiness(worker);
        return r.code === 503 ? r : undefined;
      },
      15_000,
      200,
    );
    expect(red.body).toMatchObject({ status: 'not_ready', down: ['redis'] });
    expect(red.body.checks.find((c) => c.name === 'redis')?.error).toMatch(
      /^Redis at redis:\/\/127\.0\.0\.1:\d+ is down since /,
    );
    expect((await fetch(`${worker.httpUrl}/health/live`)).status).toBe(200);
    expect(await (await fetch(`${worker.httpUrl}/metrics`)).text()).toMatch(/^settle_part_up\{part="redis"\} 0$/m);
    // The projector process does not go through the proxy: still ready.
    expect((await readiness(projector)).code).toBe(200);

    await redis.restore();
    await waitUntil('the worker ready again', async () => (await readiness(worker)).code === 200, 30_000, 250);
  }, 60_000);
});

import { afterEach, describe, expect, it } from 'vitest';
import {
  expectedOutcome,
  gatewayCounter,
  mapLimit,
  sandboxStats,
  settleClient,
  waitAllTerminal,
  type GatewayCounter,
} from './testing/client.js';
import {
  createTestWorld,
  freePort,
  circuitRefusals,
  queryEvents,
  spawnSettle,
  stopAllSettle,
  type SettleProcess,
  type TestWorld,
} from './testing/processes.js';

/**
 * Issue 3, "Done when": two processes running the reactor and scheduler roles against the same
 * Kafka and Redis send each request to the gateway sandbox exactly once (counted at the sandbox)
 * for 500 requests including retries. Real PostgreSQL, Kafka, FerretDB and Redis from
 * `infra/local/services up`; every Settle role is a real child process.
 *
 *   A  = command, query, projector, payments, sandbox (the sandbox behind a counting proxy)
 *   B, C = reactor, scheduler — same topic prefix (same consumer groups), same Redis prefix (same locks)
 */

// The figure. This used to default to 80: FerretDB 1.24 (the local MongoDB stand-in) wedged
// for good within a minute at 500, because the projector's catch-up bulk of replaceOne writes held
// one FerretDB PostgreSQL connection per matched document until the bulk ended (see `putMany` in
// platform/src/readStore/mongoReadStore.ts). Both tests take about a minute each at 500 on the
// 2-core machine. SETTLE_TEST_REQUESTS overrides it.
const REQUESTS = Number(process.env.SETTLE_TEST_REQUESTS ?? 500);
const MAX_ATTEMPTS = 5;

/** ≈ 70 % ordinary, 20 % …503 (settle on the 3rd attempt), 10 % …402 (declined), and 1 % …500 (fail after 5 attempts). */
function amountFor(i: number): number {
  const base = 1000 * (1 + (i % 97));
  if (i % 100 === 50) return base + 500;
  const r = i % 10;
  if (r < 7) return base + 123;
  if (r < 9) return base + 503;
  return base + 402;
}

interface Cluster {
  world: TestWorld;
  counter: GatewayCounter;
  a: SettleProcess;
  replicas: SettleProcess[];
  sandboxUrl: string;
}

let cluster: Cluster | undefined;

async function startCluster(): Promise<Cluster> {
  const world = await createTestWorld();
  const sandboxPort = await freePort();
  const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
  const counter = await gatewayCounter(sandboxUrl);
  const common = {
    ...world.env,
    SETTLE_RETRY_SCHEDULE: '200ms,400ms,800ms,1s',
    SETTLE_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
  };
  const a = await spawnSettle({
    name: 'A',
    roles: ['command', 'query', 'projector', 'payments', 'sandbox'],
    env: { ...common, SETTLE_SANDBOX_PORT: String(sandboxPort), SETTLE_GATEWAY_URL: counter.url },
  });
  const replicaEnv = { ...common, SETTLE_PAYMENTS_URL: `127.0.0.1:${a.grpcPort}` };
  const replicas = await Promise.all(
    ['B', 'C'].map((name) => spawnSettle({ name, roles: ['reactor', 'scheduler'], env: replicaEnv })),
  );
  return { world, counter, a, replicas, sandboxUrl };
}

afterEach(async () => {
  await stopAllSettle();
  if (cluster) {
    await cluster.counter.close();
    await cluster.world.cleanup();
    cluster = undefined;
  }
});

async function run(opts: { killReplicaAfter?: number }) {
  const started = Date.now();
  cluster = await startCluster();
  const { a, replicas, counter, sandboxUrl, world } = cluster;
  const client = settleClient(a.httpUrl);
  console.log(`[replicas] cluster up in ${Date.now() - started} ms (world ${world.id})`);
  await client.token();

  const t0 = Date.now();
  let killed: Promise<unknown> | undefined;
  const accepted = await mapLimit(
    Array.from({ length: REQUESTS }, (_, i) => i),
    16,
    async (i) => {
      if (opts.killReplicaAfter !== undefined && i === opts.killReplicaAfter) killed = replicas[0].kill();
      const amount = amountFor(i);
      const res = await client.register({ amount, reference: `replicas-${i}` }, `replicas-${world.id}-${i}`);
      return { i, amount, ...res };
    },
  );
  const registerMs = Date.now() - t0;
  const refused = accepted.filter((r) => r.status !== 202);
  expect(refused, 'every POST /v1/requests is accepted').toEqual([]);
  await killed;
  const ids = accepted.map((r) => r.id!);
  console.log(`[replicas] ${ids.length} requests registered in ${registerMs} ms`);

  const { views, pending } = await waitAllTerminal(client, ids, 180_000);
  const settleMs = Date.now() - t0;
  console.log(`[replicas] all terminal after ${settleMs} ms (${pending.length} pending)`);
  if (pending.length > 0) {
    console.log(
      'pending',
      pending.slice(0, 10).map((id) => views.get(id)),
    );
    for (const p of [a, ...replicas]) console.log(`[${p.name}] problems:\n${p.problems.slice(-15).join('\n')}`);
  }
  expect(pending, 'every request reaches a terminal state').toEqual([]);

  // Attempts the payments role refused because its gateway circuit breaker was open: they count as
  // attempts (retried, or the last one fails the request) but never reach the gateway. The breaker
  // opens when most calls in 10 s fail, which the tail of this mix (retries of `…503` requests,
  // two of three failing) can reach on a slow machine.
  const refusedBy = await circuitRefusals(world);
  const refusedTotal = [...refusedBy.values()].reduce((a, b) => a + b, 0);
  console.log(`[replicas] attempts refused by the open gateway circuit: ${refusedTotal} (${refusedBy.size} requests)`);

  // Each request ends as its amount dictates: the gateway calls its amount needs (1, 3, or all
  // of them), plus any refused attempts, or FAILED after MAX_ATTEMPTS if those left too few calls.
  const wrong = accepted
    .map((r) => {
      const rules = expectedOutcome(r.amount, MAX_ATTEMPTS);
      const attempts = rules.attempts + (refusedBy.get(r.id!) ?? 0);
      const want =
        rules.status !== 'FAILED' && attempts <= MAX_ATTEMPTS
          ? { status: rules.status, attempts }
          : { status: 'FAILED', attempts: MAX_ATTEMPTS };
      return { id: r.id!, amount: r.amount, want, got: views.get(r.id!)! };
    })
    .filter((x) => x.got.status !== x.want.status || x.got.attempts !== x.want.attempts);
  expect(wrong, 'terminal state and attempts as the sandbox rules dictate').toEqual([]);

  // Exactly one terminal event per stream, and one PaymentAuthorizationRequested per attempt, in the event store.
  const terminalCounts = await queryEvents<{ stream_id: string; n: string }>(
    world,
    `SELECT stream_id, count(*) AS n FROM settle_events WHERE type IN ('PaymentSettled','PaymentDeclined','PaymentFailed','RequestCancelled') GROUP BY stream_id`,
  );
  expect(terminalCounts.length).toBe(ids.length);
  expect(terminalCounts.filter((r) => Number(r.n) !== 1)).toEqual([]);
  const started_ = await queryEvents<{ stream_id: string; n: string }>(
    world,
    `SELECT stream_id, count(*) AS n FROM settle_events WHERE type = 'PaymentAuthorizationRequested' GROUP BY stream_id`,
  );
  const startedById = new Map(started_.map((r) => [r.stream_id.replace(/^request-/, ''), Number(r.n)]));
  expect(ids.filter((id) => startedById.get(id) !== views.get(id)!.attempts)).toEqual([]);

  // At the sandbox: each attempt that was not refused reached the gateway once (distinct
  // idempotency keys per request = attempts − refused).
  const stats = await sandboxStats(sandboxUrl);
  const callsOf = (id: string) => views.get(id)!.attempts - (refusedBy.get(id) ?? 0);
  const totalAttempts = ids.reduce((n, id) => n + views.get(id)!.attempts, 0);
  const totalCalls = totalAttempts - refusedTotal;
  const mismatched = ids
    .filter((id) => (stats.byRequest[id] ?? 0) !== callsOf(id))
    .map((id) => ({ id, sandbox: stats.byRequest[id], attempts: views.get(id)!.attempts, refused: refusedBy.get(id) }));
  expect(mismatched, 'sandbox byRequest[id] = attempts - refused').toEqual([]);
  expect(stats.authorizations).toBe(totalCalls);
  expect(Object.keys(stats.byRequest).length).toBe(ids.filter((id) => callsOf(id) > 0).length);

  // Raw calls: the sandbox dedupes by idempotency key, so a second send of the same attempt
  // only shows at the proxy.
  const duplicates = [...counter.postsByKey].filter(([, n]) => n > 1);
  console.log(
    `[replicas] ${totalAttempts} attempts (${refusedTotal} refused by the open circuit) for ${ids.length} requests; sandbox authorizations ${stats.authorizations}; raw gateway calls ${[...counter.postsByKey.values()].reduce((a, b) => a + b, 0)}, keys sent more than once: ${duplicates.length}`,
  );
  return { duplicates, replicas };
}

describe('two reactor+scheduler replicas on Kafka and Redis (real servers, real processes)', () => {
  it(
    `send each of ${REQUESTS} requests to the gateway exactly once per attempt, retries included`,
    { timeout: 300_000 },
    async () => {
      const { duplicates, replicas } = await run({});
      // With both replicas alive the whole run, no attempt is sent twice, not even with the same key.
      expect(duplicates, 'no attempt sent twice by the two replicas').toEqual([]);
      for (const r of replicas)
        expect(
          r.problems.filter((l) => /"level":(50|60)/.test(l)),
          `${r.name} logged no errors`,
        ).toEqual([]);
    },
  );

  it(`still exactly once at the sandbox when one replica is SIGKILLed midway`, { timeout: 300_000 }, async () => {
    const { duplicates } = await run({ killReplicaAfter: Math.floor(REQUESTS / 2) });
    // A killed replica's in-flight calls are redelivered to the survivor with the same idempotency
    // key: the gateway may see the same key twice, never a new key for the same attempt.
    console.log(`[replicas] after SIGKILL: ${duplicates.length} attempts re-sent with their idempotency key`);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedOutcome, settleClient, waitAllTerminal } from './testing/client.js';
import { startPrivateServices, type PrivateServices, type ServiceName } from './testing/privateServices.js';
import {
  circuitRefusals,
  createTestWorld,
  queryEvents,
  sleep,
  spawnSettle,
  stopAllSettle,
  waitUntil,
} from './testing/processes.js';

/**
 * Issue 3, "Failure behaviour" and "Done when": stopping Kafka, FerretDB or Redis (and PostgreSQL,
 * the event store) for 10 s during a 200-request run, then starting it again: `/health/ready` goes
 * red naming the part and green again after, commands refused meanwhile are refused fast (503,
 * never a hang), and every accepted request ends in exactly one terminal state.
 *
 * The servers stopped here are a private set (own ports, own state dir, see privateServices.ts),
 * started for this file: the shared servers other specs and processes use are never touched.
 * By default (npm test, CI) all four outages run; SETTLE_TEST_OUTAGES=0 skips the file,
 * SETTLE_TEST_OUTAGES=kafka,redis runs only those. The FerretDB outage was left out for a while
 * after a run where the read store stayed down after FerretDB came back: the mongodb driver's
 * server monitor got stuck on a socket FerretDB had just closed, and the read store now replaces
 * its client when that happens (platform/src/readStore/mongoClientKeeper.ts).
 */

const SETTING = process.env.SETTLE_TEST_OUTAGES ?? '1';
const REQUESTS = Number(process.env.SETTLE_TEST_OUTAGE_REQUESTS ?? 200);
/** One POST every this many ms: 200 requests over ~20 s, with the outage in the middle. */
const EVERY_MS = 100;
const OUTAGE_AT_MS = 4000;
const OUTAGE_MS = 10_000;
/** A refused POST must be refused fast: a 503 within this, never a hang. */
const FAST_MS = 3000;
const MAX_ATTEMPTS = 5;

/** Each outage and the part `/health/ready` must name while it lasts. */
const OUTAGES: { service: ServiceName; part: string; env?: Record<string, string> }[] = [
  { service: 'kafka', part: 'bus' },
  { service: 'ferretdb', part: 'readStore' },
  // With rate limits on, commands need Redis (the shared counters): refused fast while it is down.
  { service: 'redis', part: 'redis', env: { SETTLE_RATE_LIMIT: '100000', SETTLE_RATE_LIMIT_IP: '100000' } },
  // PostgreSQL is the event store (and FerretDB's storage): every command is refused while it is down.
  { service: 'postgres', part: 'eventStore' },
];
const chosen =
  SETTING === '1' ? OUTAGES : SETTING === '0' ? [] : OUTAGES.filter((o) => SETTING.split(',').includes(o.service));

function amountFor(i: number): number {
  const base = 1000 * (1 + (i % 89));
  const r = i % 10;
  if (r < 7) return base + 123;
  if (r < 9) return base + 503;
  return base + 402;
}

interface ReadySample {
  t: number;
  status: number;
  down: string[];
}

/** Polls /health/ready (and /health/live) every 250 ms until stopped. */
function watchHealth(baseUrl: string, t0: number) {
  const ready: ReadySample[] = [];
  const liveFailures: string[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = Date.now() - t0;
      try {
        const res = await fetch(`${baseUrl}/health/ready`, { signal: AbortSignal.timeout(2000) });
        const body = (await res.json()) as { down?: string[] };
        ready.push({ t, status: res.status, down: body.down ?? [] });
        const live = await fetch(`${baseUrl}/health/live`, { signal: AbortSignal.timeout(2000) });
        if (live.status !== 200) liveFailures.push(`${t} ms: /health/live ${live.status}`);
      } catch (error) {
        ready.push({ t, status: 0, down: [(error as Error).message] });
      }
      await sleep(250);
    }
  })();
  return {
    ready,
    liveFailures,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

let servers: PrivateServices | undefined;

beforeAll(async () => {
  if (chosen.length === 0) return;
  const t0 = Date.now();
  servers = await startPrivateServices('outages');
  console.log(`[outages] private servers up in ${Date.now() - t0} ms (${servers.stateDir})`);
}, 180_000);

afterAll(async () => {
  await stopAllSettle();
  // The worlds live on the private servers: removing those removes them.
  await servers?.destroy();
}, 180_000);

if (chosen.length === 0) {
  describe('outages of the parts', () => {
    it.skip('skipped because SETTLE_TEST_OUTAGES=0 was set (unset or 1 runs all four outages, as npm test does)', () =>
      undefined);
  });
} else {
  describe.sequential('outages of the parts (private servers)', () => {
    for (const { service, part, env } of chosen) {
      it(
        `${service} down for ${OUTAGE_MS / 1000} s during a ${REQUESTS}-request run: readiness red then green, fast 503s, every accepted request ends in exactly one terminal state`,
        { timeout: 240_000 },
        async () => {
          const set = servers!;
          const world = await createTestWorld(set.urls);
          const settle = await spawnSettle({
            name: `outage-${service}`,
            roles: ['command', 'query', 'projector', 'reactor', 'scheduler', 'payments', 'sandbox'],
            env: {
              ...world.env,
              SETTLE_RETRY_SCHEDULE: '200ms,400ms,800ms,1s',
              SETTLE_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
              ...env,
            },
          });
          const client = settleClient(settle.httpUrl, 15_000);
          await client.token();

          const t0 = Date.now();
          const health = watchHealth(settle.httpUrl, t0);
          // The outage, on its own schedule, while requests keep coming.
          const times = { down: 0, up: 0 };
          const timeline: string[] = [];
          const outage = (async () => {
            await sleep(OUTAGE_AT_MS);
            await set.down(service);
            times.down = Date.now() - t0;
            timeline.push(`${times.down} ms: ${service} stopped`);
            await sleep(OUTAGE_MS);
            const restarting = Date.now() - t0;
            await set.up(service);
            times.up = Date.now() - t0;
            timeline.push(`${restarting}–${times.up} ms: ${service} started`);
          })();
          // If the outage fails (a server that will not stop or start), stop sending at once.
          let outageError: unknown;
          outage.catch((error: unknown) => (outageError = error));

          const posts: Promise<{
            i: number;
            amount: number;
            at: number;
            status: number;
            id?: string;
            ms: number;
            error?: string;
          }>[] = [];
          for (let i = 0; i < REQUESTS && outageError === undefined; i++) {
            const amount = amountFor(i);
            const at = Date.now() - t0;
            posts.push(
              client
                .register({ amount, reference: `outage-${service}-${i}` }, `outage-${world.id}-${i}`)
                .then((r) => ({ i, amount, at, ...r })),
            );
            await sleep(EVERY_MS);
          }
          const results = await Promise.all(posts);
          await outage;

          // The process lives through the outage (an unheard driver error would have ended it).
          let exited: unknown;
          void settle.exited.then((r) => (exited = r));
          await sleep(0);
          expect(exited, `Settle exited during the outage:\n${settle.problems.slice(-20).join('\n')}`).toBeUndefined();
          // Readiness comes back once the part is back and this process reconnected.
          let lastReady = '';
          await waitUntil(
            'readiness green after the outage',
            async () => {
              const res = await fetch(`${settle.httpUrl}/health/ready`, { signal: AbortSignal.timeout(2000) });
              lastReady = await res.text();
              return res.ok;
            },
            60_000,
            250,
          ).catch((error: unknown) => {
            throw new Error(
              `${(error as Error).message}; last /health/ready: ${lastReady}\nproblems:\n${settle.problems.slice(-15).join('\n')}`,
            );
          });
          await health.stop();
          const greenAt =
            health.ready.find((r) => r.t > times.up && r.status === 200)?.t ??
            health.ready.at(-1)?.t ??
            Date.now() - t0;

          const accepted = results.filter((r) => r.status === 202);
          const refused = results.filter((r) => r.status !== 202);
          const redDuring = health.ready.filter((s) => s.t > times.down && s.t < times.up && s.status !== 200);
          const firstRed = health.ready.find((s) => s.t >= times.down - 2500 && s.status !== 200);
          console.log(
            `[outage ${service}] ${timeline.join('; ')}; readiness red from ${firstRed?.t ?? '-'} ms (${firstRed?.down.join(',') ?? ''}), green again at ${greenAt} ms; ` +
              `${accepted.length} accepted, ${refused.length} refused (${[...new Set(refused.map((r) => r.status))].join(',')}), ` +
              `${refused.length > 0 ? `sent from ${Math.min(...refused.map((r) => r.at))} to ${Math.max(...refused.map((r) => r.at))} ms, ` : ''}` +
              `slowest refusal ${Math.max(0, ...refused.map((r) => r.ms))} ms, slowest POST ${Math.max(...results.map((r) => r.ms))} ms`,
          );

          // Readiness went red while the server was down, naming the part; liveness stayed green.
          expect(
            redDuring.filter((s) => s.down.includes(part)).length,
            `/health/ready named ${part} as down during the outage`,
          ).toBeGreaterThan(0);
          expect(health.liveFailures, '/health/live stays green').toEqual([]);
          // A POST during the outage gets 202 or a fast 503: never a 500, never a hang.
          expect(
            refused.filter((r) => r.status !== 503 || r.ms > FAST_MS),
            'refusals are fast 503s',
          ).toEqual([]);
          if (part === 'eventStore' || env?.SETTLE_RATE_LIMIT)
            expect(refused.length, `commands need ${part}: some are refused`).toBeGreaterThan(0);
          expect(accepted.length).toBeGreaterThan(0);

          const ids = accepted.map((r) => r.id!);
          const { views, pending } = await waitAllTerminal(client, ids, 150_000);
          console.log(
            `[outage ${service}] ${ids.length - pending.length}/${ids.length} terminal ${Date.now() - t0} ms after the first POST`,
          );
          if (pending.length > 0) {
            console.log(
              'pending:',
              pending.slice(0, 5).map((id) => views.get(id)),
            );
            console.log(`problems:\n${settle.problems.slice(-30).join('\n')}`);
          }
          expect(pending, 'every accepted request reaches a terminal state').toEqual([]);

          // Attempts refused because the gateway circuit breaker was open count as attempts without
          // reaching the gateway (as in replicas.int.test.ts). After an outage the retries held back
          // meanwhile come at once, and those of `…503` requests (two of three failing) can open the
          // breaker: a request whose refused attempts leave too few calls ends FAILED, as it should.
          const refusedBy = await circuitRefusals(world);
          if (refusedBy.size > 0)
            console.log(
              `[outage ${service}] attempts refused by the open gateway circuit: ${[...refusedBy.values()].reduce((a, b) => a + b, 0)} (${refusedBy.size} requests)`,
            );
          const wrong = accepted
            .map((r) => {
              const rules = expectedOutcome(r.amount, MAX_ATTEMPTS);
              const attempts = rules.attempts + (refusedBy.get(r.id!) ?? 0);
              const want = rules.status !== 'FAILED' && attempts <= MAX_ATTEMPTS ? rules.status : 'FAILED';
              return { id: r.id!, want, got: views.get(r.id!)!.status };
            })
            .filter((x) => x.got !== x.want);
          expect(wrong, 'terminal states as the amounts (and refused attempts) dictate').toEqual([]);
          // Every request the store holds (a 503 whose append did commit, e.g. with the connection
          // lost before the answer, included) ends in exactly one terminal event, with no duplicate.
          const streams = await queryEvents<{ stream_id: string; registered: string; terminal: string }>(
            world,
            `SELECT stream_id,
                    count(*) FILTER (WHERE type = 'RequestRegistered') AS registered,
                    count(*) FILTER (WHERE type IN ('PaymentSettled','PaymentDeclined','PaymentFailed','RequestCancelled')) AS terminal
               FROM settle_events WHERE stream_id LIKE 'request-%' GROUP BY stream_id`,
          );
          expect(
            streams.filter((r) => Number(r.registered) !== 1 || Number(r.terminal) !== 1),
            'exactly one registration and one terminal event per request',
          ).toEqual([]);
          expect(streams.length).toBeGreaterThanOrEqual(ids.length);
          const stored = new Set(streams.map((r) => r.stream_id.slice('request-'.length)));
          expect(
            ids.filter((id) => !stored.has(id)),
            'every 202 was stored',
          ).toEqual([]);
          await settle.stop();
        },
      );
    }
  });
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventMetadata } from '@settle/domain';
import { createPgliteClient, loadConfig, newId, SettleError, SqlEventStore } from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERR_EVENT_STORE_IN_USE, ERR_NO_EVENT_STORE } from './openEventStore.js';
import {
  fetchProjectionStatus,
  formatProjectionTable,
  OperatorApiError,
  type ProjectionStatusRow,
} from './projections.js';
import { runProjectionRebuild, runProjectionRollback } from './rebuild.js';
import { runStreamReplay } from './replay.js';
import { startSettle, type RunningSettle } from './start.js';
import { embeddedTestEnv } from './testing/processes.js';

const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function replay(dataDir: string, streamId: string, to?: string) {
  const lines: Record<string, unknown>[] = [];
  await runStreamReplay({
    streamId,
    ...(to !== undefined ? { to } : {}),
    config: loadConfig({ SETTLE_DATA_DIR: dataDir }),
    write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return lines as {
    position: number;
    streamPosition: number;
    type: string;
    occurredAt: string;
    state: Record<string, unknown>;
  }[];
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SettleError);
  return (error as SettleError).code;
}

describe('settle replay --stream (offline time travel)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'settle-replay-'));
  const requestId = 'req-tt';

  beforeAll(async () => {
    const store = await SqlEventStore.create(await createPgliteClient(join(dataDir, 'events')));
    const registered = {
      requestId,
      authId: 'auth-1',
      merchantId: 'm-1',
      amount: 1500,
      currency: 'EUR',
      reference: 'inv-1',
      registeredAt: new Date().toISOString(),
    };
    await store.append(
      `request-${requestId}`,
      [{ id: newId(), type: 'RequestRegistered', data: registered, metadata: meta }],
      {
        expectedRevision: 'no_stream',
      },
    );
    await sleep(20);
    await store.append(
      `request-${requestId}`,
      [{ id: newId(), type: 'RequestCancelled', data: { reason: 'changed mind', by: 'm-1' }, metadata: meta }],
      {
        expectedRevision: 0,
      },
    );
    await store.append(
      'preferences-u-1',
      [
        {
          id: newId(),
          type: 'PreferencesRegistered',
          data: { userId: 'u-1', locale: 'fr-BE', registeredAt: new Date().toISOString() },
          metadata: meta,
        },
      ],
      { expectedRevision: 'no_stream' },
    );
    await store.close();
  });

  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('prints the state after each event as JSON lines', async () => {
    const lines = await replay(dataDir, `request-${requestId}`);
    expect(lines.map((l) => [l.type, l.streamPosition, l.state.status])).toEqual([
      ['RequestRegistered', 0, 'REGISTERED'],
      ['RequestCancelled', 1, 'CANCELLED'],
    ]);
    expect(Object.keys(lines[0]!)).toEqual(['position', 'streamPosition', 'type', 'occurredAt', 'state']);
    expect(lines[0]!.state).toMatchObject({ id: requestId, amount: 1500, merchantId: 'm-1' });
    expect(lines[1]!.position).toBeGreaterThan(lines[0]!.position);
  });

  it('stops at --to POSITION and at --to ISO_TIME (inclusive to the millisecond)', async () => {
    const [first, second] = await replay(dataDir, `request-${requestId}`);
    expect((await replay(dataDir, `request-${requestId}`, String(first!.position))).map((l) => l.type)).toEqual([
      'RequestRegistered',
    ]);
    expect((await replay(dataDir, `request-${requestId}`, first!.occurredAt)).map((l) => l.type)).toEqual([
      'RequestRegistered',
    ]);
    expect(await replay(dataDir, `request-${requestId}`, second!.occurredAt)).toHaveLength(2);
    expect(await replay(dataDir, `request-${requestId}`, '2000-01-01T00:00:00Z')).toEqual([]);
  });

  it('folds other known streams with their domain evolve', async () => {
    const [line] = await replay(dataDir, 'preferences-u-1');
    expect(line!.state).toMatchObject({ exists: true, userId: 'u-1', locale: 'fr-BE' });
  });

  it('refuses unknown streams, bad --to, and a data dir without an event store', async () => {
    expect(await codeOf(replay(dataDir, 'nonsense-1'))).toBe('SETTLE_ERR_REPLAY_UNKNOWN_STREAM');
    expect(await codeOf(replay(dataDir, `request-${requestId}`, 'yesterday'))).toBe('SETTLE_ERR_REPLAY_ARGUMENT');
    expect(await codeOf(replay(join(dataDir, 'nowhere'), `request-${requestId}`))).toBe(ERR_NO_EVENT_STORE);
  });
});

describe('formatProjectionTable', () => {
  it('prints one aligned line per projection and lists parked streams', () => {
    const rows: ProjectionStatusRow[] = [
      {
        name: 'requests',
        version: 1,
        state: 'live',
        position: '120',
        headPosition: '120',
        lagEvents: 0,
        lagSeconds: 0,
        parkedStreams: [],
      },
      {
        name: 'merchantStats',
        version: 1,
        state: 'catching_up',
        position: '7',
        headPosition: '120',
        lagEvents: 113,
        lagSeconds: 2.345,
        parkedStreams: ['request-x'],
      },
    ];
    const lines = formatProjectionTable(rows).split('\n');
    expect(lines[0]).toMatch(/^NAME\s+VERSION\s+STATE\s+POSITION\s+HEAD\s+LAG EVENTS\s+LAG SECONDS\s+PARKED$/);
    expect(lines[1]).toMatch(/^requests\s+1\s+live\s+120\s+120\s+0\s+0\s+0$/);
    expect(lines[2]).toMatch(/^merchantStats\s+1\s+catching_up\s+7\s+120\s+113\s+2\.3\s+1$/);
    expect(lines[3]).toBe('  parked in merchantStats: request-x');
    expect(new Set(lines.slice(0, 3).map((l) => l.length)).size).toBe(1);
  });
});

describe('against a running Settle', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'settle-ops-'));
  let settle: RunningSettle | undefined;
  let url = '';

  beforeAll(async () => {
    const env = await embeddedTestEnv(dataDir);
    url = `http://127.0.0.1:${env.SETTLE_HTTP_PORT}`;
    settle = await startSettle({ env });
  }, 120_000);

  afterAll(async () => {
    await settle?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('projections status: the operator view through GraphQL, lag 0 when idle', async () => {
    let rows: ProjectionStatusRow[] = [];
    for (let i = 0; i < 40; i++) {
      rows = await fetchProjectionStatus({ url, clientId: 'demo-operator', clientSecret: 'demo-secret' });
      if (rows.every((r) => r.lagEvents === 0)) break;
      await sleep(250);
    }
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['requests', 'merchantStats', 'preferences']));
    for (const r of rows) expect(r).toMatchObject({ lagEvents: 0, lagSeconds: 0, parkedStreams: [] });
    expect(formatProjectionTable(rows)).toMatch(/^NAME/);
  });

  it('projections status: a wrong secret or a merchant gets a clear error', async () => {
    await expect(fetchProjectionStatus({ url, clientId: 'demo-operator', clientSecret: 'wrong' })).rejects.toThrow(
      OperatorApiError,
    );
    await expect(
      fetchProjectionStatus({ url, clientId: 'demo-merchant', clientSecret: 'demo-secret' }),
    ).rejects.toThrow(/projections: /);
    await expect(
      fetchProjectionStatus({ url: 'http://127.0.0.1:9', clientId: 'x', clientSecret: 'y' }),
    ).rejects.toThrow(/cannot reach Settle/);
  });

  it('replay --projection rebuilds through the operator API and exits after the cutover; rollback goes back', async () => {
    const env = { url, clientId: 'demo-operator', clientSecret: 'demo-secret' };
    const out: string[] = [];
    const updates: number[] = [];
    await runProjectionRebuild({
      projection: 'requests',
      env,
      pollMs: 50,
      write: (l) => out.push(l),
      progress: () => ({ update: (p) => updates.push(p.position), stop: () => undefined }),
    });
    expect(out.join('\n')).toMatch(/requests: v2 is live .*settle projections rollback requests/);
    expect((await fetchProjectionStatus(env)).find((r) => r.name === 'requests')).toMatchObject({ version: 2 });
    await runProjectionRollback({ projection: 'requests', env, write: (l) => out.push(l) });
    expect(out.at(-1)).toMatch(/requests: rolled back, v1 is live/);
    await expect(runProjectionRollback({ projection: 'nope', env })).rejects.toThrow(
      /BAD_USER_INPUT: unknown projection "nope"/,
    );
    // Offline, the embedded read store has nothing durable to work on: a clear refusal.
    const offline = await runProjectionRebuild({
      projection: 'requests',
      offline: true,
      config: loadConfig({ SETTLE_DATA_DIR: dataDir }),
    }).catch((e: unknown) => e);
    expect(offline).toBeInstanceOf(SettleError);
    expect((offline as Error).message).toMatch(/embedded read store .*Start Settle and run this again/);
  }, 60_000);

  it('replay --stream refuses the embedded store while Settle runs, pointing at request(id, asOf:)', async () => {
    const error = await replay(dataDir, 'request-anything').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettleError);
    expect((error as SettleError).code).toBe(ERR_EVENT_STORE_IN_USE);
    expect((error as Error).message).toMatch(/asOf/);
    expect((error as Error).message).toMatch(/stop Settle/);
  });

  it('replay --stream works once Settle has stopped cleanly', async () => {
    await settle!.stop();
    settle = undefined;
    // The demo clients' streams are there: fold one (secrets redacted).
    const lines = await replay(dataDir, 'client-demo-operator');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines[0]!.state).toMatchObject({ clientId: 'demo-operator', secretHash: '[redacted]' });
    expect(JSON.stringify(lines)).not.toMatch(/scrypt\$|demo-secret/);
  }, 60_000);
});

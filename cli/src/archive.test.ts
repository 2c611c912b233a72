import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { StoredEvent } from '@settle/domain';
import {
  createPgliteClient,
  loadConfig,
  readOperatorActions,
  SettleError,
  SqlArchive,
  SqlEventStore,
  type Config,
} from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runArchiveCommand, runArchiveImport } from './archive.js';
import { ERR_EVENT_STORE_IN_USE } from './openEventStore.js';
import { ERR_REPLAY_STREAM_ARCHIVED, runStreamReplay } from './replay.js';
import { startSettle, type RunningSettle } from './start.js';
import { settleClient, TERMINAL, type SettleClient } from './testing/client.js';
import { embeddedTestEnv, sleep, waitUntil } from './testing/processes.js';

/**
 * Archiving end to end on the embedded parts, as an operator would: requests reach a terminal
 * state through the running Settle; `settle archive` refuses while Settle runs, then (stopped)
 * exports, truncates and records the run; a restarted Settle no longer shows them; replays skip
 * them unless asked; an import brings their history back.
 */
describe('settle archive (embedded parts, end to end)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'settle-archive-e2e-'));
  const archiveDir = join(dataDir, 'archive');
  let env: Record<string, string>;
  let config: Config;
  let settle: RunningSettle | undefined;
  let client: SettleClient;
  let url = '';
  const old: string[] = [];
  let recent = '';
  let boundary = 0;

  async function start(): Promise<void> {
    settle = await startSettle({ env });
    client = settleClient(url);
  }
  async function stop(): Promise<void> {
    await settle?.stop();
    settle = undefined;
  }
  async function terminal(id: string): Promise<string> {
    return waitUntil(
      `request ${id} to end`,
      async () => {
        const r = await client.get(id);
        return r.body && TERMINAL.has(r.body.status) ? r.body.status : undefined;
      },
      30_000,
    );
  }
  async function register(amount: number, reference: string): Promise<string> {
    const r = await client.register({ amount, reference });
    expect(r.status).toBe(202);
    return r.id!;
  }
  async function graphql<T>(query: string): Promise<T> {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await client.token()}` },
      body: JSON.stringify({ query }),
    });
    const body = (await res.json()) as { data: T; errors?: unknown };
    expect(body.errors).toBeUndefined();
    return body.data;
  }
  async function withStore<T>(fn: (store: SqlEventStore, archive: SqlArchive) => Promise<T>): Promise<T> {
    const store = await SqlEventStore.create(await createPgliteClient(join(dataDir, 'events')));
    try {
      return await fn(store, await SqlArchive.create(store.client));
    } finally {
      await store.close();
    }
  }
  async function replay(streamId: string, includeArchived = false) {
    const lines: { type: string; streamPosition: number; state: { status?: string } }[] = [];
    await runStreamReplay({
      streamId,
      config,
      includeArchived,
      note: () => undefined,
      write: (line) => lines.push(JSON.parse(line) as (typeof lines)[number]),
    });
    return lines;
  }

  beforeAll(async () => {
    env = await embeddedTestEnv(dataDir);
    url = `http://127.0.0.1:${env.SETTLE_HTTP_PORT}`;
    config = loadConfig(env);
    await start();
    // Two settle, one is declined (amount ending in 402): all terminal, then the retention boundary.
    old.push(await register(12_000, 'arch-1'), await register(13_000, 'arch-2'), await register(10_402, 'arch-3'));
    expect(await Promise.all(old.map(terminal))).toEqual(['SETTLED', 'SETTLED', 'DECLINED']);
    await sleep(100);
    boundary = Date.now();
    await sleep(100);
    recent = await register(14_000, 'arch-recent');
    expect(await terminal(recent)).toBe('SETTLED');
  }, 120_000);

  afterAll(async () => {
    await stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  const retention = () => `${Date.now() - boundary}ms`;

  it('refuses with a clear message while a Settle runs on the embedded store, changing nothing', async () => {
    const error = await runArchiveCommand({ olderThan: retention(), config }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettleError);
    expect((error as SettleError).code).toBe(ERR_EVENT_STORE_IN_USE);
    expect((error as Error).message).toMatch(/stop Settle/);
    expect(existsSync(archiveDir)).toBe(false);
    const stats = await graphql<{ merchantStats: { registered: number } }>('{ merchantStats { registered } }');
    expect(stats.merchantStats.registered).toBe(4);
  });

  it('--dry-run lists the terminal requests past retention and changes nothing', async () => {
    await stop();
    const result = await runArchiveCommand({ olderThan: retention(), config, dryRun: true });
    expect(result.outcomes.map((o) => [o.streamId, o.outcome]).sort()).toEqual(
      old.map((id) => [`request-${id}`, 'would_archive']).sort(),
    );
    expect(result.auditPosition).toBeUndefined();
    expect(existsSync(archiveDir)).toBe(false);
    expect((await replay(`request-${old[0]}`)).at(-1)!.state.status).toBe('SETTLED');
  });

  it('archives them: files hold every stored event, the store keeps only the tombstone, the run is audited', async () => {
    const before = await withStore((store) => Promise.all(old.map((id) => store.readStream(`request-${id}`))));
    const result = await runArchiveCommand({ olderThan: retention(), config });
    expect(result).toMatchObject({ archived: 3, failed: 0, dir: archiveDir });
    expect(readdirSync(archiveDir).sort()).toEqual(old.map((id) => `request-${id}.jsonl.gz`).sort());

    await withStore(async (store, archive) => {
      for (const [i, id] of old.entries()) {
        const streamId = `request-${id}`;
        const lines = gunzipSync(readFileSync(join(archiveDir, `${streamId}.jsonl.gz`)))
          .toString()
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as StoredEvent);
        // Everything that was there, then the one RequestArchived, with positions, ids and metadata.
        expect(lines.slice(0, -1).map((e) => [e.id, e.type, e.streamPosition, e.globalPosition])).toEqual(
          before[i]!.map((e) => [e.id, e.type, e.streamPosition, e.globalPosition]),
        );
        expect(lines.at(-1)).toMatchObject({ type: 'RequestArchived', streamId, metadata: { actor: 'cli' } });
        expect(lines.every((e) => typeof e.metadata.correlationId === 'string')).toBe(true);
        const left = await store.readStream(streamId);
        expect(left.map((e) => e.id)).toEqual([lines.at(-1)!.id]);
        expect((await archive.readArchived(streamId)).map((e) => e.id)).toEqual(lines.slice(0, -1).map((e) => e.id));
      }
      expect((await store.readStream(`request-${recent}`)).map((e) => e.type)).toContain('PaymentSettled');
      const audit = (await readOperatorActions(store)).filter((e) => e.data.action === 'ArchiveRun');
      expect(audit).toHaveLength(1);
      expect(audit[0]!.data).toMatchObject({ target: archiveDir, detail: { archived: 3, failed: 0 } });
    });
  });

  it('a second run archives nothing twice', async () => {
    const result = await runArchiveCommand({ olderThan: retention(), config });
    expect(result.archived).toBe(0);
    await withStore(async (store, archive) => {
      for (const id of old) {
        const all = [...(await archive.readArchived(`request-${id}`)), ...(await store.readStream(`request-${id}`))];
        expect(all.filter((e) => e.type === 'RequestArchived')).toHaveLength(1);
      }
    });
  });

  it('replay --stream says a stream is archived, and reads it with --include-archived', async () => {
    const streamId = `request-${old[0]}`;
    const error = await replay(streamId).catch((e: unknown) => e);
    expect((error as SettleError).code).toBe(ERR_REPLAY_STREAM_ARCHIVED);
    expect((error as Error).message).toMatch(/--include-archived/);
    const lines = await replay(streamId, true);
    expect(lines[0]!.type).toBe('RequestRegistered');
    expect(lines.map((l) => l.state.status).slice(-2)).toEqual(['SETTLED', 'ARCHIVED']);
  });

  it('a restarted Settle rebuilds its read models without them', async () => {
    await start();
    const data = await graphql<{
      requests: { totalCount: number; nodes: { id: string }[] };
      merchantStats: { registered: number; settled: number; declined: number };
    }>('{ requests(first: 10) { totalCount nodes { id } } merchantStats { registered settled declined } }');
    expect(data.requests.nodes.map((n) => n.id)).toEqual([recent]);
    expect(data.requests.totalCount).toBe(1);
    expect(data.merchantStats).toMatchObject({ registered: 1, settled: 1, declined: 0 });
    expect((await client.get(old[0]!)).status).toBe(404);
    await stop();
  }, 60_000);

  it('archive import puts a stream back with its original ids and positions, once', async () => {
    const streamId = `request-${old[1]}`;
    const file = join(archiveDir, `${streamId}.jsonl.gz`);
    const first = await runArchiveImport({ file, config });
    expect(first).toMatchObject({ streamId, present: 1 });
    expect(first.restored).toBeGreaterThan(2);
    const lines = await replay(streamId);
    expect(lines.map((l) => l.streamPosition)).toEqual(lines.map((_, i) => i));
    expect(lines.at(-1)!.state.status).toBe('ARCHIVED');
    expect(await runArchiveImport({ file, config })).toMatchObject({ restored: 0 });
    await withStore(async (store) => {
      const imports = (await readOperatorActions(store)).filter((e) => e.data.action === 'ArchiveImported');
      expect(imports.map((e) => e.data.detail)).toEqual([
        expect.objectContaining({ streamId, restored: first.restored }),
        expect.objectContaining({ streamId, restored: 0 }),
      ]);
    });
  });
});

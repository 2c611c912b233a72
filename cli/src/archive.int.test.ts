import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleClient, TERMINAL, type SettleClient } from './testing/client.js';
import {
  createTestWorld,
  queryEvents,
  REPO_ROOT,
  sleep,
  spawnSettle,
  stopAllSettle,
  waitUntil,
  type SettleProcess,
  type TestWorld,
} from './testing/processes.js';

const run = promisify(execFile);
const NODE = existsSync(join(REPO_ROOT, 'node_modules/.bin/node'))
  ? join(REPO_ROOT, 'node_modules/.bin/node')
  : process.execPath;

/**
 * `settle archive` next to a running deployment on the real parts (PostgreSQL event store,
 * MongoDB wire read store through FerretDB, Kafka, Redis), run as an operator would: the `settle`
 * binary in its own process while Settle keeps serving. The running projector drops the archived
 * requests from MongoDB; requests registered afterwards still reach SETTLED (forwarder, reactors
 * and projector are not thrown by rows leaving the log).
 */
describe('settle archive next to a running deployment (PostgreSQL + MongoDB)', () => {
  let world: TestWorld;
  let settle: SettleProcess;
  let client: SettleClient;
  const archiveDir = mkdtempSync(join(tmpdir(), 'settle-archive-int-'));
  const old: string[] = [];
  let recent = '';
  let boundary = 0;

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(NODE, [join(REPO_ROOT, 'cli/bin/settle.js'), ...args], {
        env: { ...process.env, ...world.env, SETTLE_ARCHIVE_DIR: archiveDir, SETTLE_LOG_LEVEL: 'warn' },
        timeout: 120_000,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }
  async function terminal(id: string): Promise<string> {
    return waitUntil(
      `request ${id} to end`,
      async () => {
        const r = await client.get(id);
        return r.body && TERMINAL.has(r.body.status) ? r.body.status : undefined;
      },
      60_000,
    );
  }
  async function register(amount: number, reference: string): Promise<string> {
    const r = await client.register({ amount, reference });
    expect(r.status).toBe(202);
    return r.id!;
  }
  async function graphql<T>(query: string): Promise<T> {
    const res = await fetch(`${settle.httpUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await client.token()}` },
      body: JSON.stringify({ query }),
    });
    return ((await res.json()) as { data: T }).data;
  }

  beforeAll(async () => {
    world = await createTestWorld();
    settle = await spawnSettle({
      name: 'archive-all',
      roles: ['command', 'query', 'projector', 'reactor', 'scheduler', 'payments', 'sandbox'],
      env: world.env,
    });
    client = settleClient(settle.httpUrl);
    old.push(await register(21_000, 'int-arch-1'), await register(22_402, 'int-arch-2'));
    expect(await Promise.all(old.map(terminal))).toEqual(['SETTLED', 'DECLINED']);
    await sleep(200);
    boundary = Date.now();
    // The retention counts back from when the `settle` process starts (a few seconds after the
    // test computes it on a loaded machine): the recent request comes well after the boundary.
    await sleep(10_000);
    recent = await register(23_000, 'int-arch-recent');
    expect(await terminal(recent)).toBe('SETTLED');
  }, 180_000);

  afterAll(async () => {
    await stopAllSettle();
    await world?.cleanup();
    rmSync(archiveDir, { recursive: true, force: true });
  }, 120_000);

  it('archives while Settle runs: files, rows moved, read model updated live, the log keeps flowing', async () => {
    const dry = await cli('archive', '--older-than', `${Date.now() - boundary}ms`, '--dry-run');
    expect(dry.code).toBe(0);
    for (const id of old) expect(dry.stdout).toContain(`would archive  request-${id}`);
    expect(dry.stdout).not.toContain(recent);

    const done = await cli('archive', '--older-than', `${Date.now() - boundary}ms`);
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/archived 2 request stream\(s\)/);
    expect(readdirSync(archiveDir).sort()).toEqual(old.map((id) => `request-${id}.jsonl.gz`).sort());

    for (const id of old) {
      const live = await queryEvents<{ type: string }>(
        world,
        'SELECT type FROM settle_events WHERE stream_id = $1 ORDER BY stream_position',
        [`request-${id}`],
      );
      expect(live.map((r) => r.type)).toEqual(['RequestArchived']);
      const moved = await queryEvents<{ n: string }>(
        world,
        'SELECT count(*)::text AS n FROM settle_events_archive WHERE stream_id = $1',
        [`request-${id}`],
      );
      expect(Number(moved[0]!.n)).toBeGreaterThan(1);
    }

    // The running projector drops them from MongoDB.
    await waitUntil(
      'the read model to drop the archived requests',
      async () => {
        const data = await graphql<{ requests: { nodes: { id: string }[] } }>(
          '{ requests(first: 20) { nodes { id } } }',
        );
        return data.requests.nodes.length === 1 && data.requests.nodes[0]!.id === recent;
      },
      30_000,
    );
    expect((await client.get(old[0]!)).status).toBe(404);
    const stats = await graphql<{ merchantStats: { registered: number; declined: number } }>(
      '{ merchantStats { registered declined } }',
    );
    expect(stats.merchantStats).toEqual({ registered: 1, declined: 0 });

    // Forwarder, reactors and projector go on past the truncation.
    const after = await register(24_000, 'int-arch-after');
    expect(await terminal(after)).toBe('SETTLED');
  });

  it('a rebuild with the archived events merged back ends where the live read model is', async () => {
    const rebuilt = await cli('replay', '--projection', 'merchantStats', '--dry-run', '--include-archived');
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).toMatch(/merchant_stats\S*: live 1, rebuilt 1: no differences/);
    // It did read the archived events: more than a rebuild over the live log alone.
    const plain = await cli('replay', '--projection', 'merchantStats', '--dry-run');
    expect(plain.stdout).toMatch(/merchant_stats\S*: live 1, rebuilt 1: no differences/);
    const count = (out: string) => Number(/(\d+) events in/.exec(out)?.[1]);
    expect(count(rebuilt.stdout)).toBeGreaterThan(count(plain.stdout));
  });

  it('replay and import work next to the running Settle', async () => {
    const streamId = `request-${old[0]}`;
    const refused = await cli('replay', '--stream', streamId);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is archived/);
    const replayed = await cli('replay', '--stream', streamId, '--include-archived');
    expect(replayed.code).toBe(0);
    const states = replayed.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { state: { status: string } }).state.status);
    expect(states.slice(-2)).toEqual(['SETTLED', 'ARCHIVED']);

    const imported = await cli('archive', 'import', join(archiveDir, `${streamId}.jsonl.gz`));
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/event\(s\) restored, 1 already in the event store/);
    expect((await cli('replay', '--stream', streamId)).code).toBe(0);
    const again = await cli('archive', 'import', join(archiveDir, `${streamId}.jsonl.gz`));
    expect(again.stdout).toMatch(/0 event\(s\) restored/);
    const audit = await queryEvents<{ action: string }>(
      world,
      `SELECT data->>'action' AS action FROM settle_events WHERE stream_id = 'operator-audit' ORDER BY global_position`,
    );
    expect(audit.map((a) => a.action).filter((a) => a.startsWith('Archive'))).toEqual([
      'ArchiveRun',
      'ArchiveImported',
      'ArchiveImported',
    ]);
  });
});
